import * as grpc from "@grpc/grpc-js";
import { FeatureScope, VmClass } from "../../gen/steward/v1/vm_pb";
import { VmService } from "../../gen/steward/v1/vm_service_pb";
import { createClient } from "../../src/client/steward-client";
import { rpcError } from "../fixtures/expect-rpc-error";
import { bool, vmRef } from "../fixtures/property-values";
import { stopAndReadEvents } from "../fixtures/stored-events";
import { serverForSuite, type ServerWithClients } from "../fixtures/server-with-clients";
import { startTestServer } from "../fixtures/test-server";

describe("tags, features, notes and renaming", () => {
  const suite = serverForSuite();
  let vms: ServerWithClients["vms"];
  beforeAll(async () => {
    vms = suite.vms;
    await vms.createVm({ name: "tpl", klass: VmClass.TEMPLATE_VM, label: "black" });
    await vms.createVm({ name: "work", klass: VmClass.APP_VM, label: "blue", template: "tpl" });
  });

  it("adds, lists, tests and removes tags, idempotently", async () => {
    expect((await vms.addTag({ vm: "work", tag: "backup:daily" })).added).toBe(true);
    expect((await vms.addTag({ vm: "work", tag: "backup:daily" })).added).toBe(false);
    expect((await vms.listTags({ vm: "work" })).tags).toEqual(["backup:daily", "created-by-dom0"]);
    expect((await vms.hasTag({ vm: "work", tag: "backup:daily" })).present).toBe(true);
    expect((await vms.removeTag({ vm: "work", tag: "backup:daily" })).removed).toBe(true);
    expect((await vms.removeTag({ vm: "work", tag: "backup:daily" })).removed).toBe(false);
    expect((await vms.hasTag({ vm: "work", tag: "backup:daily" })).present).toBe(false);
    const bad = await rpcError(vms.addTag({ vm: "work", tag: "has space" }));
    expect(bad.info).toMatchObject({ reason: "INVALID_TAG", metadata: { field: "tag" } });
    expect((await rpcError(vms.addTag({ vm: "ghost", tag: "x" }))).code).toBe(grpc.status.NOT_FOUND);
  });

  it("keeps the created-by tags to Steward: no request sets or removes them", async () => {
    for (const call of [vms.addTag({ vm: "work", tag: "created-by-someone" }), vms.removeTag({ vm: "work", tag: "created-by-dom0" })]) {
      const refused = await rpcError(call);
      expect([refused.code, refused.info?.reason, refused.info?.metadata.field]).toEqual([grpc.status.PERMISSION_DENIED, "TAG_RESERVED", "tag"]);
    }
    expect((await vms.listTags({ vm: "work" })).tags).toContain("created-by-dom0");
  });

  it("sets, gets, lists and removes features", async () => {
    await vms.setFeature({ vm: "work", name: "gui", value: "1" });
    await vms.setFeature({ vm: "work", name: "os-distribution", value: "debian" });
    expect((await vms.getFeature({ vm: "work", name: "gui" })).value).toBe("1");
    expect((await vms.listFeatures({ vm: "work" })).features).toEqual({ gui: "1", "os-distribution": "debian" });
    await vms.removeFeature({ vm: "work", name: "gui" });
    expect((await rpcError(vms.getFeature({ vm: "work", name: "gui" }))).info).toMatchObject({ reason: "FEATURE_NOT_FOUND", metadata: { vm: "work", feature: "gui" } });
    expect((await rpcError(vms.removeFeature({ vm: "work", name: "gui" }))).code).toBe(grpc.status.NOT_FOUND);
    await vms.removeFeature({ vm: "work", name: "gui", allowMissing: true });
    expect((await rpcError(vms.setFeature({ vm: "work", name: "has space", value: "" }))).info?.metadata.field).toBe("name");
  });

  it("checks a feature on the VM, then its template, then dom0", async () => {
    await vms.setFeature({ vm: "tpl", name: "qrexec", value: "1" });
    await vms.setFeature({ vm: "dom0", name: "gui-default-color", value: "blue" });
    expect(await vms.checkFeature({ vm: "work", name: "qrexec" })).toMatchObject({ found: false });
    expect(await vms.checkFeature({ vm: "work", name: "qrexec", scope: FeatureScope.TEMPLATE })).toMatchObject({ found: true, value: "1", sourceVm: "tpl" });
    expect(await vms.checkFeature({ vm: "work", name: "gui-default-color", scope: FeatureScope.TEMPLATE })).toMatchObject({ found: false });
    expect(await vms.checkFeature({ vm: "work", name: "gui-default-color", scope: FeatureScope.ADMINVM })).toMatchObject({ found: true, sourceVm: "dom0" });
    expect(await vms.checkFeature({ vm: "work", name: "qrexec", scope: FeatureScope.TEMPLATE_AND_ADMINVM })).toMatchObject({ sourceVm: "tpl" });
    await vms.setFeature({ vm: "work", name: "qrexec", value: "" });
    expect(await vms.checkFeature({ vm: "work", name: "qrexec", scope: FeatureScope.TEMPLATE })).toMatchObject({ found: true, value: "", sourceVm: "work" });
  });

  it("checks features along whole chains: every template hop, and the effective netvm chain", async () => {
    const { host } = suite;
    await vms.createVm({ name: "chain-tpl", klass: VmClass.TEMPLATE_VM, label: "black" });
    await vms.setFeature({ vm: "chain-tpl", name: "deep", value: "from the template" });
    await vms.createVm({ name: "chain-dvm", klass: VmClass.APP_VM, label: "red", template: "chain-tpl", properties: { template_for_dispvms: bool(true) } });
    const { vm: disp } = await vms.createDisposableVm({ template: "chain-dvm" });
    // A DispVM's template is its AppVM, whose template has the feature: two hops.
    expect(await vms.checkFeature({ vm: disp!.name, name: "deep", scope: FeatureScope.TEMPLATE })).toMatchObject({ found: true, value: "from the template", sourceVm: "chain-tpl" });

    await vms.createVm({ name: "chain-net", klass: VmClass.STANDALONE_VM, label: "red", properties: { provides_network: bool(true), netvm: vmRef("") } });
    await vms.createVm({ name: "chain-fw", klass: VmClass.STANDALONE_VM, label: "red", properties: { provides_network: bool(true), netvm: vmRef("chain-net") } });
    await vms.setFeature({ vm: "chain-net", name: "uplink", value: "eth0" });
    await vms.createVm({ name: "chain-user", klass: VmClass.STANDALONE_VM, label: "red" });
    // chain-user takes the default netvm, chain-fw, whose netvm has the feature.
    await host.setGlobalProperty({ name: "default_netvm", value: vmRef("chain-fw") });
    expect(await vms.checkFeature({ vm: "chain-user", name: "uplink", scope: FeatureScope.NETVM })).toMatchObject({ found: true, value: "eth0", sourceVm: "chain-net" });
    await host.resetGlobalProperty({ name: "default_netvm" });
    await vms.removeVm({ vm: disp!.name });
  });

  it("keeps notes as text, within Qubes' limits", async () => {
    expect((await vms.getNotes({ vm: "work" })).notes).toBe("");
    await vms.setNotes({ vm: "work", notes: "Tax papers.\n\tKeep offline." });
    expect((await vms.getNotes({ vm: "work" })).notes).toBe("Tax papers.\n\tKeep offline.");
    for (const refused of ["bell\x07", "carriage\r", "c1\u0085", "trojan \u202e source", "isolate\u2066", "mark\u200f"]) {
      const error = await rpcError(vms.setNotes({ vm: "work", notes: refused }));
      expect([JSON.stringify(refused), error.code, error.info?.reason, error.info?.metadata.field]).toEqual([JSON.stringify(refused), grpc.status.INVALID_ARGUMENT, "INVALID_NOTES", "notes"]);
    }
    await vms.setNotes({ vm: "work", notes: "Grüße, 日本語, emoji 🙂 and arabic مرحبا" });
    expect((await rpcError(vms.setNotes({ vm: "work", notes: "x".repeat(256 * 1024 + 1) }))).info?.reason).toBe("NOTES_TOO_LONG");
    await vms.setNotes({ vm: "work", notes: "" });
    expect((await vms.getNotes({ vm: "work" })).notes).toBe("");
  });

  it("renames a halted VM, and references to it follow", async () => {
    await vms.createVm({ name: "tpl-old", klass: VmClass.TEMPLATE_VM, label: "black" });
    await vms.createVm({ name: "app-on-old", klass: VmClass.APP_VM, label: "red", template: "tpl-old" });
    const { vm } = await vms.renameVm({ vm: "tpl-old", newName: "tpl-new" });
    expect(vm).toMatchObject({ name: "tpl-new" });
    expect((await vms.getVm({ vm: "app-on-old" })).vm!.template).toBe("tpl-new");
    expect((await vms.renameVm({ vm: "tpl-new", newName: "tpl-new" })).vm!.name).toBe("tpl-new");
    expect((await rpcError(vms.renameVm({ vm: "tpl-new", newName: "work" }))).info?.reason).toBe("VM_EXISTS");
    expect((await rpcError(vms.renameVm({ vm: "tpl-new", newName: "bad name" }))).info?.metadata.field).toBe("new_name");
    expect((await rpcError(vms.renameVm({ vm: "dom0", newName: "host" }))).info?.reason).toBe("VM_IS_ADMIN");
  });
});

describe("attribute events", () => {
  it("are written with each change, and only for real changes", async () => {
    const server = await startTestServer();
    const vms = createClient(VmService, server.tcp);
    await vms.createVm({ name: "ev", klass: VmClass.STANDALONE_VM, label: "red" });
    await vms.addTag({ vm: "ev", tag: "t1" });
    await vms.addTag({ vm: "ev", tag: "t1" });
    await vms.removeTag({ vm: "ev", tag: "t1" });
    await vms.setFeature({ vm: "ev", name: "f", value: "1" });
    await vms.setFeature({ vm: "ev", name: "f", value: "1" });
    await vms.setFeature({ vm: "ev", name: "f", value: "2" });
    await vms.removeFeature({ vm: "ev", name: "f" });
    await vms.setNotes({ vm: "ev", notes: "hé" });
    await vms.setNotes({ vm: "ev", notes: "hé" });
    await vms.renameVm({ vm: "ev", newName: "ev2" });
    vms.close();
    const events = await stopAndReadEvents(server);
    expect(events.map((e) => [e.subject, e.name, e.kwargs])).toEqual([
      ["", "pool-add", { pool: "default", driver: "file" }], // made at the first start
      ["ev", "domain-add", { vm: "ev" }],
      ["ev", "domain-tag-add:created-by-dom0", { tag: "created-by-dom0" }],
      ["ev", "operation-done", { operation: expect.stringMatching(/^operations\//), kind: "create-vm", outcome: "succeeded" }],
      ["ev", "domain-tag-add:t1", { tag: "t1" }],
      ["ev", "domain-tag-delete:t1", { tag: "t1" }],
      ["ev", "domain-feature-set:f", { feature: "f", value: "1" }],
      ["ev", "domain-feature-set:f", { feature: "f", value: "2", oldvalue: "1" }],
      ["ev", "domain-feature-delete:f", { feature: "f" }],
      ["ev", "domain-notes-set", { bytes: "3" }],
      ["ev2", "property-set:name", { name: "name", newvalue: "ev2", oldvalue: "ev" }],
    ]);
  });
});
