import { anyUnpack } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { Operations } from "../../gen/google/longrunning/operations_pb";
import { EventService } from "../../gen/steward/v1/event_service_pb";
import { OperationKind, OperationMetadataSchema, ProgressUnit } from "../../gen/steward/v1/operation_pb";
import { OperationService } from "../../gen/steward/v1/operation_service_pb";
import { VmClass } from "../../gen/steward/v1/vm_pb";
import { responseOf } from "../../src/client/operation-results";
import { createClient, type StewardClient } from "../../src/client/steward-client";
import { CloneVmResponseSchema } from "../../gen/steward/v1/vm_service_pb";
import { rpcError } from "../fixtures/expect-rpc-error";
import { clonedVm, createdVm } from "../fixtures/made-vms";
import { serverForSuite, type ServerWithClients } from "../fixtures/server-with-clients";

const UNKNOWN = "operations/0b4a9c3e-2d1f-4e5a-9b8c-7d6e5f4a3b2c";

describe("long work as operations (AIP-151), through the gRPC API", () => {
  const suite = serverForSuite();
  let vms: ServerWithClients["vms"];
  let ops: StewardClient<typeof OperationService>;
  let generic: StewardClient<typeof Operations>;
  beforeAll(async () => {
    vms = suite.vms;
    ops = createClient(OperationService, suite.server.tcp);
    generic = createClient(Operations, suite.server.tcp);
    await vms.createVm({ name: "src", klass: VmClass.STANDALONE_VM, label: "red" });
  });
  afterAll(() => {
    ops.close();
    generic.close();
  });

  it("CloneVm answers a done operation with the copy, its metadata saying what, on what, for whom and how far", async () => {
    const source = (await vms.getVm({ vm: "src" })).vm!;
    const op = await vms.cloneVm({ vm: "src", newName: "copy" });
    expect(op.name).toMatch(/^operations\/[0-9a-f-]{36}$/);
    expect(op.done).toBe(true);
    expect(clonedVm(op)).toMatchObject({ name: "copy", klass: VmClass.STANDALONE_VM, label: "red" });
    const metadata = anyUnpack(op.metadata!, OperationMetadataSchema)!;
    expect(metadata).toMatchObject({
      kind: OperationKind.CLONE_VM,
      target: "src",
      targetUuid: source.uuid,
      caller: "dom0",
      method: "steward.v1.VmService/CloneVm",
      progressUnit: ProgressUnit.BYTES,
      cancelRequested: false,
    });
    // The bytes its volumes' copies took (none where the pool copies cheaply), all done.
    expect(metadata.progressDone).toBe(metadata.progressTotal);
    expect(Number(metadata.endTime!.seconds)).toBeGreaterThanOrEqual(Number(metadata.createTime!.seconds));
  });

  it("is the same operation from OperationService and from google.longrunning.Operations, got or waited for", async () => {
    const op = await vms.cloneVm({ vm: "src", newName: "copy-2" });
    expect(await ops.getOperation({ name: op.name })).toEqual(op);
    expect(await generic.getOperation({ name: op.name })).toEqual(op);
    expect(await ops.waitOperation({ name: op.name, timeout: { seconds: 1n, nanos: 0 } })).toEqual(op);
    expect(await generic.waitOperation({ name: op.name })).toEqual(op);
    expect(responseOf(await generic.getOperation({ name: op.name }), CloneVmResponseSchema).vm!.name).toBe("copy-2");
  });

  it("CreateVm is an operation too, about the VM it made", async () => {
    const op = await vms.createVm({ name: "fresh", klass: VmClass.STANDALONE_VM, label: "blue" });
    expect(op.done).toBe(true);
    expect(createdVm(op)!.name).toBe("fresh");
    expect(anyUnpack(op.metadata!, OperationMetadataSchema)).toMatchObject({ kind: OperationKind.CREATE_VM, target: "fresh", targetUuid: createdVm(op)!.uuid });
  });

  it("fails the call itself, with no operation made, for a request that cannot succeed", async () => {
    const before = (await ops.listOperations({})).operations.length;
    expect((await rpcError(vms.cloneVm({ vm: "ghost", newName: "x" }))).info?.reason).toBe("VM_NOT_FOUND");
    expect((await rpcError(vms.cloneVm({ vm: "src", newName: "copy" }))).code).toBe(grpc.status.ALREADY_EXISTS);
    expect((await rpcError(vms.cloneVm({ vm: "src", newName: "bad name" }))).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect((await rpcError(vms.createVm({ name: "fresh", klass: VmClass.STANDALONE_VM, label: "blue" }))).info?.reason).toBe("VM_EXISTS");
    expect((await rpcError(vms.createVm({ name: "lost", klass: VmClass.APP_VM, label: "blue", template: "ghost" }))).code).toBe(grpc.status.NOT_FOUND);
    expect((await ops.listOperations({})).operations.length).toBe(before);
  });

  it("gives a retry with the same request_id the same operation, and makes one copy", async () => {
    const requestId = "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a";
    const first = await vms.cloneVm({ vm: "src", newName: "retried", requestId });
    const again = await vms.cloneVm({ vm: "src", newName: "retried", requestId });
    expect(again.name).toBe(first.name);
    expect(clonedVm(again)!.uuid).toBe(clonedVm(first)!.uuid);
    const reused = await rpcError(vms.cloneVm({ vm: "src", newName: "other", requestId }));
    expect([reused.code, reused.info?.reason]).toEqual([grpc.status.INVALID_ARGUMENT, "REQUEST_ID_REUSED"]);
  });

  it("lists the newest first, filtered and paged with tokens of the same listing", async () => {
    const all = (await ops.listOperations({ name: "operations", filter: "kind=clone-vm" })).operations;
    expect(all.length).toBeGreaterThanOrEqual(3);
    const created = all.map((op) => anyUnpack(op.metadata!, OperationMetadataSchema)!.createTime!);
    expect([...created].sort((a, b) => Number(b.seconds - a.seconds) || b.nanos - a.nanos)).toEqual(created);
    const paged: string[] = [];
    let pageToken = "";
    do {
      const page = await ops.listOperations({ filter: "kind=clone-vm", pageSize: 1, pageToken });
      expect(page.operations.length).toBe(1);
      paged.push(page.operations[0].name);
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(paged).toEqual(all.map((op) => op.name));
    expect((await ops.listOperations({ filter: "done=false" })).operations).toEqual([]);
    expect((await ops.listOperations({ filter: "target=fresh AND kind=create-vm" })).operations.map((op) => createdVm(op)!.name)).toEqual(["fresh"]);
    const token = (await ops.listOperations({ filter: "kind=clone-vm", pageSize: 1 })).nextPageToken;
    const foreign = await rpcError(ops.listOperations({ filter: "kind=create-vm", pageSize: 1, pageToken: token }));
    expect([foreign.code, foreign.info?.reason]).toEqual([grpc.status.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN"]);
    const badFilter = await rpcError(ops.listOperations({ filter: "state=RUNNING" }));
    expect([badFilter.code, badFilter.info?.reason, badFilter.info?.metadata.field]).toEqual([grpc.status.INVALID_ARGUMENT, "INVALID_OPERATION_FILTER", "filter"]);
    expect((await rpcError(ops.listOperations({ name: "projects/x" }))).info?.metadata.field).toBe("name");
    expect((await rpcError(ops.listOperations({ pageSize: -1 }))).info?.metadata.field).toBe("page_size");
  });

  it("cancels an ended operation as a no-op, deletes it, and then knows it no more", async () => {
    const op = await vms.cloneVm({ vm: "src", newName: "short-lived" });
    await ops.cancelOperation({ name: op.name });
    expect(await ops.getOperation({ name: op.name })).toEqual(op);
    await generic.deleteOperation({ name: op.name });
    await generic.deleteOperation({ name: op.name });
    const gone = await rpcError(ops.getOperation({ name: op.name }));
    expect([gone.code, gone.info?.reason]).toEqual([grpc.status.NOT_FOUND, "OPERATION_NOT_FOUND"]);
    // The copy it made stays: deleting an operation forgets its record only.
    expect((await vms.getVm({ vm: "short-lived" })).vm!.name).toBe("short-lived");
  });

  it("refuses a name that is no operation's, and does not know one it never made", async () => {
    for (const call of [ops.getOperation({ name: "x" }), ops.waitOperation({ name: "operations/nope" }), ops.cancelOperation({ name: "" }), ops.deleteOperation({ name: "operations/1" })]) {
      const refused = await rpcError(call);
      expect([refused.code, refused.info?.reason, refused.info?.metadata.field]).toEqual([grpc.status.INVALID_ARGUMENT, "INVALID_OPERATION_NAME", "name"]);
    }
    for (const call of [ops.getOperation({ name: UNKNOWN }), ops.waitOperation({ name: UNKNOWN }), ops.cancelOperation({ name: UNKNOWN })]) {
      expect((await rpcError(call)).info?.reason).toBe("OPERATION_NOT_FOUND");
    }
    expect((await rpcError(ops.waitOperation({ name: UNKNOWN, timeout: { seconds: -1n, nanos: 0 } }))).info?.metadata.field).toBe("timeout");
  });

  it("tells of each operation's end in the event stream, about its VM", async () => {
    const events = createClient(EventService, suite.server.tcp);
    const abort = new AbortController();
    const stream = events.events({ namePrefixes: ["operation-"] }, { signal: abort.signal });
    const seen: { subject: string; name: string; kwargs: Record<string, string> }[] = [];
    const following = (async () => {
      for await (const message of stream) {
        if (message.kind.case === "event" && message.kind.value.name !== "connection-established") seen.push(message.kind.value);
        if (seen.length === 1) break;
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const op = await vms.cloneVm({ vm: "src", newName: "told" });
    await following;
    abort.abort();
    events.close();
    expect(seen[0]).toMatchObject({ subject: "src", name: "operation-done", kwargs: { operation: op.name, kind: "clone-vm", outcome: "succeeded" } });
  });
});
