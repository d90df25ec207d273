import * as grpc from "@grpc/grpc-js";
import Database from "better-sqlite3";
import * as path from "node:path";
import { PowerState, VmClass } from "../../gen/steward/v1/vm_pb";
import { VmService } from "../../gen/steward/v1/vm_service_pb";
import { StewardApp } from "../../src/app/app";
import { createClient, type StewardClient } from "../../src/client/steward-client";
import { rpcError } from "../fixtures/expect-rpc-error";
import { removeDir } from "../fixtures/temp-dir";
import { startTestServer, type TestServer } from "../fixtures/test-server";
import { createdVm } from "../fixtures/made-vms";

describe("VMs: create, find, list, remove", () => {
  let server: TestServer;
  let vms: StewardClient<typeof VmService>;
  beforeAll(async () => {
    server = await startTestServer();
    vms = createClient(VmService, server.tcp);
  });
  afterAll(async () => {
    vms.close();
    await server.stop();
  });

  it("always has dom0, the AdminVM, with qid 0, running, not removable", async () => {
    const { vm } = await vms.getVm({ vm: "dom0" });
    expect(vm).toMatchObject({ name: "dom0", qid: 0, klass: VmClass.ADMIN_VM, state: PowerState.RUNNING, uuid: "00000000-0000-0000-0000-000000000000" });
    const refused = await rpcError(vms.removeVm({ vm: "dom0" }));
    expect(refused.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(refused.info?.reason).toBe("VM_IS_ADMIN");
  });

  it("creates a TemplateVM and an AppVM on it, tagged created-by-<caller>", async () => {
    const template = createdVm(await vms.createVm({ name: "debian-12", klass: VmClass.TEMPLATE_VM, label: "black" }));
    expect(template).toMatchObject({ name: "debian-12", klass: VmClass.TEMPLATE_VM, state: PowerState.HALTED, label: "black", template: "" });
    expect(template!.uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(template!.qid).toBeGreaterThan(0);
    expect(template!.tags).toEqual(["created-by-dom0"]);

    const work = createdVm(await vms.createVm({ name: "work", klass: VmClass.APP_VM, label: "blue", template: "debian-12" }));
    expect(work).toMatchObject({ klass: VmClass.APP_VM, template: "debian-12", label: "blue" });
    expect(work!.qid).not.toBe(template!.qid);
    expect((await vms.getVm({ vm: `uuid:${work!.uuid}` })).vm!.name).toBe("work");
  });

  it("takes VM names as host names: no '..', no trailing dot, no '_', no label edged with '-', no -dm, and none that differs from another only in case", async () => {
    for (const name of ["a..b", "work.", "my_vm", "work-", "a.-b", "a-.b", "sys-net-dm", "SYS-DM"]) {
      const error = await rpcError(vms.createVm({ name, klass: VmClass.STANDALONE_VM, label: "red" }));
      expect([name, error.code, error.info?.reason, error.info?.metadata.field]).toEqual([name, grpc.status.INVALID_ARGUMENT, "INVALID_VM_NAME", "name"]);
    }
    await vms.createVm({ name: "cased", klass: VmClass.STANDALONE_VM, label: "red" });
    await vms.createVm({ name: "other-cased", klass: VmClass.STANDALONE_VM, label: "red" });
    const created = await rpcError(vms.createVm({ name: "Cased", klass: VmClass.STANDALONE_VM, label: "red" }));
    expect([created.code, created.info?.reason, created.info?.metadata.vm]).toEqual([grpc.status.ALREADY_EXISTS, "VM_EXISTS", "cased"]);
    const renamed = await rpcError(vms.renameVm({ vm: "other-cased", newName: "CASED" }));
    expect([renamed.code, renamed.info?.reason]).toEqual([grpc.status.ALREADY_EXISTS, "VM_EXISTS"]);
    // A VM may change the case of its own name.
    expect((await vms.renameVm({ vm: "cased", newName: "Cased" })).vm!.name).toBe("Cased");
    expect(createdVm(await vms.createVm({ name: "a.b-c.d9", klass: VmClass.STANDALONE_VM, label: "red" }))!.name).toBe("a.b-c.d9");
  });

  it("refuses a taken name, a bad name, a missing label and a wrong class, saying which", async () => {
    await vms.createVm({ name: "taken", klass: VmClass.STANDALONE_VM, label: "red" });
    expect((await rpcError(vms.createVm({ name: "taken", klass: VmClass.STANDALONE_VM, label: "red" }))).info).toMatchObject({
      reason: "VM_EXISTS",
      metadata: { vm: "taken" },
    });
    for (const name of ["", "1abc", "has space", "a".repeat(32), "none", "Default", "Domain-0"]) {
      const error = await rpcError(vms.createVm({ name, klass: VmClass.STANDALONE_VM, label: "red" }));
      expect([name, error.code, error.info?.reason, error.info?.fieldViolations[0]?.field]).toEqual([name, grpc.status.INVALID_ARGUMENT, "INVALID_VM_NAME", "name"]);
    }
    expect((await rpcError(vms.createVm({ name: "x1", klass: VmClass.STANDALONE_VM, label: "mauve" }))).info).toMatchObject({
      reason: "LABEL_NOT_FOUND",
    });
    for (const klass of [VmClass.UNSPECIFIED, VmClass.ADMIN_VM, VmClass.DISP_VM]) {
      const error = await rpcError(vms.createVm({ name: "x2", klass, label: "red" }));
      expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(error.info?.metadata.field).toBe("klass");
    }
  });

  it("requires an AppVM's template to be a TemplateVM", async () => {
    await vms.createVm({ name: "standalone-1", klass: VmClass.STANDALONE_VM, label: "red" });
    expect((await rpcError(vms.createVm({ name: "app-x", klass: VmClass.APP_VM, label: "red" }))).info?.reason).toBe("NO_TEMPLATE");
    expect((await rpcError(vms.createVm({ name: "app-x", klass: VmClass.APP_VM, label: "red", template: "standalone-1" }))).info?.reason).toBe(
      "NOT_A_TEMPLATE",
    );
    const missing = await rpcError(vms.createVm({ name: "app-x", klass: VmClass.APP_VM, label: "red", template: "ghost" }));
    expect(missing.code).toBe(grpc.status.NOT_FOUND);
    expect(missing.info).toMatchObject({ reason: "VM_NOT_FOUND", metadata: { vm: "ghost", field: "template" } });
  });

  it("returns the first result to a retry with the same request_id, without creating twice", async () => {
    const id = "6f1d2f6e-3c1a-4a8e-9d7c-2b1f0e9a8c71";
    const first = createdVm(await vms.createVm({ name: "retried", klass: VmClass.STANDALONE_VM, label: "green", requestId: id }))!;
    const again = createdVm(await vms.createVm({ name: "retried", klass: VmClass.STANDALONE_VM, label: "green", requestId: id }))!;
    expect(again.uuid).toBe(first.uuid);
    expect((await vms.listVms({ tag: "created-by-dom0", pageSize: 1000 })).vms.filter((v) => v.name === "retried")).toHaveLength(1);
  });

  it("takes a request_id for one request: a UUID, refused with a request that asks for something else", async () => {
    const id = "0c5e2f0a-7d3b-4f1e-8a6c-9b2d4e6f8a10";
    await vms.createVm({ name: "once", klass: VmClass.STANDALONE_VM, label: "green", requestId: id });
    const other = await rpcError(vms.createVm({ name: "twice", klass: VmClass.STANDALONE_VM, label: "green", requestId: id }));
    expect([other.code, other.info?.reason, other.info?.metadata.field]).toEqual([grpc.status.INVALID_ARGUMENT, "REQUEST_ID_REUSED", "request_id"]);
    const elsewhere = await rpcError(vms.cloneVm({ vm: "once", newName: "once-copy", requestId: id }));
    expect(elsewhere.info?.reason).toBe("REQUEST_ID_REUSED");
    const notUuid = await rpcError(vms.createVm({ name: "thrice", klass: VmClass.STANDALONE_VM, label: "green", requestId: "req-1" }));
    expect([notUuid.code, notUuid.info?.reason, notUuid.info?.metadata.field]).toEqual([grpc.status.INVALID_ARGUMENT, "INVALID_REQUEST_ID", "request_id"]);
  });

  it("creates one VM for calls at once with one request_id, and gives them all its view", async () => {
    const id = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
    const answers = await Promise.all(Array.from({ length: 6 }, () => vms.createVm({ name: "raced", klass: VmClass.STANDALONE_VM, label: "green", requestId: id })));
    expect(new Set(answers.map((answer) => createdVm(answer)!.uuid)).size).toBe(1);
    expect(new Set(answers.map((answer) => answer.name)).size).toBe(1);
    expect(answers.every((answer) => createdVm(answer)!.name === "raced")).toBe(true);
  });

  it("takes a uuid the client chose (machined's CreateMachine id), once, and never a removed VM's the events still name", async () => {
    const chosen = "6F1C9D2A-3B4E-4C5D-8E6F-7A8B9C0D1E2F";
    const vm = createdVm(await vms.createVm({ name: "chosen-id", klass: VmClass.STANDALONE_VM, label: "red", uuid: chosen }));
    expect(vm!.uuid).toBe(chosen.toLowerCase());
    expect((await vms.getVm({ vm: `uuid:${chosen.toLowerCase()}` })).vm!.name).toBe("chosen-id");
    const taken = await rpcError(vms.createVm({ name: "chosen-id2", klass: VmClass.STANDALONE_VM, label: "red", uuid: chosen.toLowerCase() }));
    expect([taken.code, taken.info?.reason, taken.info?.metadata.uuid]).toEqual([grpc.status.ALREADY_EXISTS, "VM_UUID_IN_USE", chosen.toLowerCase()]);
    for (const bad of ["not-a-uuid", "00000000-0000-0000-0000-000000000000"]) {
      const error = await rpcError(vms.createVm({ name: "chosen-id3", klass: VmClass.STANDALONE_VM, label: "red", uuid: bad }));
      expect([bad, error.code, error.info?.reason, error.info?.fieldViolations[0]?.field]).toEqual([bad, grpc.status.INVALID_ARGUMENT, "INVALID_UUID", "uuid"]);
    }
    // Removed, it is still named by the events a resuming stream would follow it by.
    await vms.removeVm({ vm: "chosen-id" });
    const retained = await rpcError(vms.createVm({ name: "chosen-id4", klass: VmClass.STANDALONE_VM, label: "red", uuid: chosen }));
    expect(retained.info?.reason).toBe("VM_UUID_IN_USE");
  });

  it("will not remove a template in use, and says which VMs use it", async () => {
    await vms.createVm({ name: "tpl-used", klass: VmClass.TEMPLATE_VM, label: "black" });
    await vms.createVm({ name: "user-a", klass: VmClass.APP_VM, label: "red", template: "tpl-used" });
    await vms.createVm({ name: "user-b", klass: VmClass.APP_VM, label: "red", template: "tpl-used" });
    const inUse = await rpcError(vms.removeVm({ vm: "tpl-used" }));
    expect(inUse.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(inUse.info).toMatchObject({ reason: "VM_IN_USE", metadata: { vm: "tpl-used", used_by: "user-a (template), user-b (template)" } });
    await vms.removeVm({ vm: "user-a" });
    await vms.removeVm({ vm: "user-b" });
    await vms.removeVm({ vm: "tpl-used" });
    expect((await rpcError(vms.getVm({ vm: "tpl-used" }))).info?.reason).toBe("VM_NOT_FOUND");
  });

  it("answers NOT_FOUND for a missing VM, unless allow_missing", async () => {
    expect((await rpcError(vms.removeVm({ vm: "ghost" }))).code).toBe(grpc.status.NOT_FOUND);
    await vms.removeVm({ vm: "ghost", allowMissing: true });
    const byUuid = await rpcError(vms.getVm({ vm: "uuid:12345678-1234-1234-1234-123456789abc" }));
    expect(byUuid.info).toMatchObject({ reason: "VM_NOT_FOUND", metadata: { vm: "uuid:12345678-1234-1234-1234-123456789abc" } });
    expect((await rpcError(vms.getVm({ vm: "uuid:nope" }))).code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it("refuses pools, which do not exist yet, by name", async () => {
    expect((await rpcError(vms.createVm({ name: "p1", klass: VmClass.STANDALONE_VM, label: "red", pool: "fast" }))).info).toMatchObject({
      reason: "POOL_NOT_FOUND",
      metadata: { pool: "fast" },
    });
    // A malformed combination of fields is INVALID_ARGUMENT (AIP-193), naming one of them.
    const conflict = await rpcError(vms.createVm({ name: "p1", klass: VmClass.STANDALONE_VM, label: "red", pool: "a", volumePools: { private: "b" } }));
    expect([conflict.code, conflict.info?.reason, conflict.info?.metadata.field]).toEqual([grpc.status.INVALID_ARGUMENT, "POOL_CONFLICT", "volume_pools"]);
  });
});

describe("ListVms", () => {
  let server: TestServer;
  let vms: StewardClient<typeof VmService>;
  beforeAll(async () => {
    server = await startTestServer();
    vms = createClient(VmService, server.tcp);
    await vms.createVm({ name: "tpl", klass: VmClass.TEMPLATE_VM, label: "black" });
    for (let i = 0; i < 25; i++) {
      const name = `vm-${String(i).padStart(2, "0")}`;
      await vms.createVm({ name, klass: VmClass.APP_VM, label: i % 2 ? "red" : "blue", template: "tpl" });
    }
  });
  afterAll(async () => {
    vms.close();
    await server.stop();
  });

  it("pages through every VM by name, exactly once each", async () => {
    const seen: string[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await vms.listVms({ pageSize: 7, pageToken });
      expect(page.totalSize).toBe(27);
      expect(page.vms.length).toBeLessThanOrEqual(7);
      seen.push(...page.vms.map((v) => v.name));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken);
    expect(pages).toBe(4);
    expect(seen).toEqual(["dom0", "tpl", ...Array.from({ length: 25 }, (_, i) => `vm-${String(i).padStart(2, "0")}`)].sort());
  });

  it("filters by class, label, tag and power state", async () => {
    expect((await vms.listVms({ klass: VmClass.TEMPLATE_VM })).vms.map((v) => v.name)).toEqual(["tpl"]);
    const red = await vms.listVms({ label: "red", pageSize: 100 });
    expect(red.totalSize).toBe(12);
    expect(red.vms.every((v) => v.label === "red")).toBe(true);
    expect((await vms.listVms({ tag: "created-by-dom0" })).totalSize).toBe(26);
    expect((await vms.listVms({ state: PowerState.RUNNING })).vms.map((v) => v.name)).toEqual(["dom0"]);
    const halted = await vms.listVms({ state: PowerState.HALTED, pageSize: 10 });
    expect(halted.totalSize).toBe(26);
    expect(halted.nextPageToken).not.toBe("");
    expect((await vms.listVms({ klass: VmClass.APP_VM, label: "blue", pageSize: 100 })).totalSize).toBe(13);
  });

  it("refuses a page token that is not one of its own, or one of another query", async () => {
    expect((await rpcError(vms.listVms({ pageToken: "garbage" }))).info).toMatchObject({ reason: "INVALID_PAGE_TOKEN", metadata: { field: "page_token" } });
    const { nextPageToken } = await vms.listVms({ pageSize: 2 });
    expect((await rpcError(vms.listVms({ pageToken: nextPageToken, label: "red" }))).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect((await rpcError(vms.listVms({ pageSize: -1 }))).info?.metadata.field).toBe("page_size");
  });
});

describe("VM changes", () => {
  it("survive a restart, and are written with their events", async () => {
    const server = await startTestServer();
    const vms = createClient(VmService, server.tcp);
    const vm = createdVm(await vms.createVm({ name: "keeper", klass: VmClass.STANDALONE_VM, label: "purple" }));
    await vms.createVm({ name: "goner", klass: VmClass.STANDALONE_VM, label: "purple" });
    await vms.removeVm({ vm: "goner" });
    vms.close();
    await server.app.stop();

    const db = new Database(path.join(server.dataDir, "steward.db"), { readonly: true, fileMustExist: true });
    const events = db.prepare("SELECT name, subject FROM events ORDER BY sequence").all() as { name: string; subject: string }[];
    db.close();
    expect(events).toEqual([
      { name: "pool-add", subject: "" }, // the default pool, made at the first start
      { name: "domain-add", subject: "keeper" },
      { name: "domain-tag-add:created-by-dom0", subject: "keeper" },
      { name: "operation-done", subject: "keeper" },
      { name: "domain-add", subject: "goner" },
      { name: "domain-tag-add:created-by-dom0", subject: "goner" },
      { name: "operation-done", subject: "goner" },
      { name: "domain-delete", subject: "goner" },
    ]);

    const restarted = await StewardApp.start(server.config, server.logs.log);
    const again = createClient(VmService, restarted.server.addresses[0]);
    expect((await again.getVm({ vm: "keeper" })).vm).toMatchObject({ uuid: vm!.uuid, qid: vm!.qid, label: "purple" });
    expect((await rpcError(again.getVm({ vm: "goner" }))).code).toBe(grpc.status.NOT_FOUND);
    again.close();
    await restarted.stop();
    removeDir(server.dataDir);
  });
});
