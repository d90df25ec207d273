import { anyUnpack } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb";
import { EventService } from "../../gen/steward/v1/event_service_pb";
import { OperationMetadataSchema } from "../../gen/steward/v1/operation_pb";
import { OperationService } from "../../gen/steward/v1/operation_service_pb";
import { VmClass } from "../../gen/steward/v1/vm_pb";
import { VmService } from "../../gen/steward/v1/vm_service_pb";
import { StewardApp } from "../../src/app/app";
import { createClient, type StewardClient } from "../../src/client/steward-client";
import { rpcError } from "../fixtures/expect-rpc-error";
import { clonedVm } from "../fixtures/made-vms";
import { GATED_COPY_BYTES, gatedCopies } from "../fixtures/participants";
import { str } from "../fixtures/property-values";
import { addressesOfQid } from "../../src/core/vms/properties/vm-addresses";
import { sleep, until } from "../fixtures/sim-guests";
import { serverForSuite, type ServerWithClients } from "../fixtures/server-with-clients";
import { removeDir } from "../fixtures/temp-dir";
import { startTestServer } from "../fixtures/test-server";

const copies = gatedCopies();

const metadataOf = (op: { metadata?: Parameters<typeof anyUnpack>[0] }) => anyUnpack(op.metadata!, OperationMetadataSchema)!;


describe("operations that outlast their call, through the gRPC API", () => {
  const suite = serverForSuite([], () => [copies.participant]);
  let vms: ServerWithClients["vms"];
  let ops: StewardClient<typeof OperationService>;
  beforeAll(async () => {
    vms = suite.vms;
    ops = createClient(OperationService, suite.server.tcp);
    await vms.createVm({ name: "src", klass: VmClass.STANDALONE_VM, label: "red" });
  });
  afterAll(() => ops.close());

  it("answers a running operation, which is got, listed, waited for and retried, and ends with its copy", async () => {
    const requestId = "3a4b5c6d-7e8f-4a0b-9c1d-2e3f4a5b6c7d";
    const op = await vms.cloneVm({ vm: "src", newName: "slow", requestId });
    expect(op.done).toBe(false);
    expect(op.result.case).toBeUndefined();
    expect(metadataOf(op)).toMatchObject({ progressDone: BigInt(GATED_COPY_BYTES / 2), progressTotal: BigInt(GATED_COPY_BYTES), cancelRequested: false });
    expect((await ops.getOperation({ name: op.name })).done).toBe(false);
    expect((await ops.listOperations({ filter: "done=false" })).operations.map((o) => o.name)).toEqual([op.name]);
    expect((await ops.waitOperation({ name: op.name, timeout: { seconds: 0n, nanos: 100_000_000 } })).done).toBe(false);
    // A retry while it runs gets the same operation, and starts no second copy.
    expect((await vms.cloneVm({ vm: "src", newName: "slow", requestId })).name).toBe(op.name);
    const running = await rpcError(ops.deleteOperation({ name: op.name }));
    expect([running.code, running.info?.reason]).toEqual([grpc.status.FAILED_PRECONDITION, "OPERATION_RUNNING"]);
    expect((await rpcError(vms.getVm({ vm: "slow" }))).code).toBe(grpc.status.NOT_FOUND);

    const waiting = ops.waitOperation({ name: op.name, timeout: { seconds: 10n, nanos: 0 } });
    copies.release("slow");
    const done = await waiting;
    expect(done.done).toBe(true);
    expect(clonedVm(done)!.name).toBe("slow");
    expect(metadataOf(done)).toMatchObject({ progressDone: BigInt(GATED_COPY_BYTES), progressTotal: BigInt(GATED_COPY_BYTES) });
    expect((await vms.getVm({ vm: "slow" })).vm!.name).toBe("slow");
  });

  it("is cancelled: it ends CANCELLED with cancel_requested, and leaves no copy", async () => {
    const op = await vms.cloneVm({ vm: "src", newName: "doomed" });
    expect(op.done).toBe(false);
    await ops.cancelOperation({ name: op.name });
    const ended = await ops.waitOperation({ name: op.name, timeout: { seconds: 10n, nanos: 0 } });
    expect(ended.done).toBe(true);
    expect(ended.result.case).toBe("error");
    const status = ended.result.case === "error" ? ended.result.value : undefined;
    expect(status?.code).toBe(grpc.status.CANCELLED);
    expect(anyUnpack(status!.details[0], ErrorInfoSchema)?.reason).toBe("CANCELLED");
    expect(metadataOf(ended).cancelRequested).toBe(true);
    expect((await rpcError(vms.getVm({ vm: "doomed" }))).code).toBe(grpc.status.NOT_FOUND);
    // Its copy stopped at the signal, before it made anything to undo.
    expect(copies.undone).toEqual([]);
    // The source is free again: the operation held it only while it ran.
    await vms.setFeature({ vm: "src", name: "after-cancel", value: "1" });
    expect((await ops.listOperations({ filter: "done=false" })).operations).toEqual([]);
  });

  it("makes other VMs while a copy runs, none of them with the copy's name, qid or uuid", async () => {
    const op = await vms.cloneVm({ vm: "src", newName: "Busy" });
    expect(op.done).toBe(false);
    // Other new VMs do not wait for the copy's making.
    const other = await vms.createVm({ name: "made-meanwhile", klass: VmClass.STANDALONE_VM, label: "red" });
    expect(other.done).toBe(true);
    for (const name of ["Busy", "busy"]) {
      const taken = await rpcError(vms.createVm({ name, klass: VmClass.STANDALONE_VM, label: "red" }));
      expect([taken.code, taken.info?.reason, taken.info?.metadata.vm]).toEqual([grpc.status.ALREADY_EXISTS, "VM_EXISTS", "Busy"]);
    }
    copies.release("Busy");
    const done = await ops.waitOperation({ name: op.name, timeout: { seconds: 10n, nanos: 0 } });
    const copy = clonedVm(done)!;
    const meanwhile = (await vms.getVm({ vm: "made-meanwhile" })).vm!;
    expect(copy.qid).not.toBe(meanwhile.qid);
    expect(copy.uuid).not.toBe(meanwhile.uuid);
    // Once made, its name is free of its reservation: a rename of it back and forth is no collision.
    await vms.renameVm({ vm: "Busy", newName: "busy" });
    expect((await vms.getVm({ vm: "busy" })).vm!.qid).toBe(copy.qid);
  });

  it("does not make a copy whose default address a VM made meanwhile took as its own", async () => {
    const highest = Math.max(...(await vms.listVms({ pageSize: 1000 })).vms.map((vm) => vm.qid));
    const op = await vms.cloneVm({ vm: "src", newName: "squatted" });
    expect(op.done).toBe(false);
    // The copy holds the next qid, whose default address the other VM sets for itself.
    const { ip } = addressesOfQid(highest + 1);
    const squatter = await vms.createVm({ name: "squatter", klass: VmClass.STANDALONE_VM, label: "red", properties: { ip: str(ip) } });
    expect(squatter.done).toBe(true);
    copies.release("squatted");
    const ended = await ops.waitOperation({ name: op.name, timeout: { seconds: 10n, nanos: 0 } });
    const status = ended.result.case === "error" ? ended.result.value : undefined;
    expect([status?.code, status && anyUnpack(status.details[0], ErrorInfoSchema)?.reason]).toEqual([grpc.status.ALREADY_EXISTS, "ADDRESS_IN_USE"]);
    expect((await rpcError(vms.getVm({ vm: "squatted" }))).code).toBe(grpc.status.NOT_FOUND);
    expect(copies.undone).toContain("squatted");
  });

  it("tells its progress, a second in, then its end, in the event stream", async () => {
    const events = createClient(EventService, suite.server.tcp);
    const abort = new AbortController();
    const seen: { name: string; kwargs: Record<string, string> }[] = [];
    const stream = events.events({ namePrefixes: ["operation-"] }, { signal: abort.signal });
    const following = (async () => {
      try {
        for await (const message of stream) {
          if (message.kind.case === "event" && message.kind.value.name !== "connection-established") seen.push(message.kind.value);
        }
      } catch {
        // cancelled at the end
      }
    })();
    const op = await vms.cloneVm({ vm: "src", newName: "watched" });
    await sleep(300);
    copies.release("watched");
    await ops.waitOperation({ name: op.name, timeout: { seconds: 10n, nanos: 0 } });
    await until(() => seen.some((e) => e.name === "operation-done" && e.kwargs.operation === op.name), 2000);
    abort.abort();
    events.close();
    await following;
    const mine = seen.filter((e) => e.kwargs.operation === op.name).map((e) => [e.name, e.kwargs.done ?? e.kwargs.outcome]);
    expect(mine).toEqual([
      ["operation-progress", String(GATED_COPY_BYTES)],
      ["operation-done", "succeeded"],
    ]);
  });
});

describe("an operation running when Steward stops", () => {
  it("undoes its work and is told, after the restart, as interrupted", async () => {
    const server = await startTestServer([], {}, () => [copies.participant]);
    const vms = createClient(VmService, server.tcp);
    await vms.createVm({ name: "src", klass: VmClass.STANDALONE_VM, label: "red" });
    const op = await vms.cloneVm({ vm: "src", newName: "cut-short" });
    expect(op.done).toBe(false);
    vms.close();
    await server.app.stop();

    const restarted = await StewardApp.start(server.config, server.logs.log);
    try {
      const address = restarted.server.addresses[0];
      const ops = createClient(OperationService, address);
      const again = createClient(VmService, address);
      const ended = await ops.getOperation({ name: op.name });
      expect(ended.done).toBe(true);
      const status = ended.result.case === "error" ? ended.result.value : undefined;
      expect([status?.code, anyUnpack(status!.details[0], ErrorInfoSchema)?.reason]).toEqual([grpc.status.ABORTED, "OPERATION_INTERRUPTED"]);
      expect((await rpcError(again.getVm({ vm: "cut-short" }))).code).toBe(grpc.status.NOT_FOUND);
      ops.close();
      again.close();
    } finally {
      await restarted.stop();
      removeDir(server.dataDir);
    }
  });
});
