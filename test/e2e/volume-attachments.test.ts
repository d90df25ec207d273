import * as grpc from "@grpc/grpc-js";
import { VmClass } from "../../gen/steward/v1/vm_pb";
import { VmService } from "../../gen/steward/v1/vm_service_pb";
import { VolumeService } from "../../gen/steward/v1/volume_service_pb";
import { createClient, type StewardClient } from "../../src/client/steward-client";
import { rpcError } from "../fixtures/expect-rpc-error";
import { diskRecorder } from "../fixtures/participants";
import { stopAndReadEvents } from "../fixtures/stored-events";
import { startTestServer, type TestServer } from "../fixtures/test-server";
import { importStream, pattern } from "../fixtures/volume-bytes";

const MiB = 1024n * 1024n;

describe("volumes attached to VMs as extra disks", () => {
  let server: TestServer;
  let vms: StewardClient<typeof VmService>;
  let volumes: StewardClient<typeof VolumeService>;
  /** What each start's plan held once the storage area had its turn. */
  const { participant: recorder, launched } = diskRecorder();
  const pooled = (vid: string) => ({ pool: "default", vid, vm: "", name: "" });
  const own = (vm: string, name: string) => ({ vm, name, pool: "", vid: "" });
  const attach = (vm: string, volume: ReturnType<typeof pooled>, name: string, rw = true, order = 0) => volumes.attachVolume({ vm, volume, name, rw, order });
  const failure = async (call: Promise<unknown>) => {
    const error = await rpcError(call);
    return { code: error.code, reason: error.info?.reason };
  };

  beforeAll(async () => {
    server = await startTestServer([], {}, () => [recorder]);
    vms = createClient(VmService, server.tcp);
    volumes = createClient(VolumeService, server.tcp);
    for (const name of ["work", "other", "third"]) await vms.createVm({ name, klass: VmClass.STANDALONE_VM, label: "red" });
    for (const vid of ["data", "logs", "shared", "spare"]) await volumes.createVolume({ pool: "default", vid, sizeBytes: MiB });
  });

  afterAll(async () => {
    vms?.close();
    volumes?.close();
    await server?.stop();
  });

  it("attach persistently, idempotently, and join the VM's launch after its own disks, in their order", async () => {
    const attached = (await attach("work", pooled("data"), "data", true, 1)).volume!;
    expect(attached.attachments).toEqual([expect.objectContaining({ vm: "work", name: "data", rw: true, order: 1 })]);
    expect((await attach("work", pooled("data"), "data", true, 1)).volume?.attachments).toHaveLength(1);
    await attach("work", pooled("logs"), "logs", false, 0);

    await vms.startVm({ vm: "work" });
    const disks = launched.get("work")!;
    expect(disks.map((disk) => [disk.name, disk.readOnly])).toEqual([
      ["root", false],
      ["private", false],
      ["volatile", false],
      ["logs", true],
      ["data", false],
    ]);
    expect(disks[4].path).toBe(attached.hostPath);
    await vms.killVm({ vm: "work" });
  });

  it("refuse another attachment of a volume the VM has, a name its disks have, bad names and dom0", async () => {
    expect(await failure(attach("work", pooled("data"), "data", false, 1))).toEqual({ code: grpc.status.FAILED_PRECONDITION, reason: "VOLUME_ATTACHED" });
    expect(await failure(attach("work", pooled("data"), "other-name", true, 1))).toEqual({ code: grpc.status.FAILED_PRECONDITION, reason: "VOLUME_ATTACHED" });
    expect(await failure(attach("work", pooled("spare"), "data"))).toEqual({ code: grpc.status.ALREADY_EXISTS, reason: "DISK_NAME_TAKEN" });
    for (const name of ["", "Data", "private", "9lives", "a".repeat(33), "../x"]) {
      const error = await rpcError(attach("work", pooled("spare"), name));
      expect({ name, code: error.code, reason: error.info?.reason, field: error.info?.fieldViolations[0]?.field }).toEqual({ name, code: grpc.status.INVALID_ARGUMENT, reason: "INVALID_DISK_NAME", field: "name" });
    }
    expect(await failure(attach("dom0", pooled("spare"), "spare"))).toEqual({ code: grpc.status.FAILED_PRECONDITION, reason: "VM_IS_ADMIN" });
    expect(await failure(attach("nobody", pooled("spare"), "spare"))).toEqual({ code: grpc.status.NOT_FOUND, reason: "VM_NOT_FOUND" });
    expect(await failure(attach("work", pooled("nothing"), "spare"))).toEqual({ code: grpc.status.NOT_FOUND, reason: "VOLUME_NOT_FOUND" });
    expect(await failure(volumes.attachVolume({ vm: "work", volume: own("work", "private"), name: "again", rw: false, order: 0 }))).toEqual({
      code: grpc.status.FAILED_PRECONDITION,
      reason: "VOLUME_OWNED",
    });
  });

  it("keep one writer: a volume attached writable is another VM's to have at all, one attached read-only nobody's to write", async () => {
    expect(await failure(attach("other", pooled("data"), "data", true))).toEqual({ code: grpc.status.FAILED_PRECONDITION, reason: "VOLUME_IN_USE" });
    expect(await failure(attach("other", pooled("data"), "data", false))).toEqual({ code: grpc.status.FAILED_PRECONDITION, reason: "VOLUME_IN_USE" });
    await attach("work", pooled("shared"), "shared", false);
    await attach("other", pooled("shared"), "shared", false);
    expect(await failure(attach("third", pooled("shared"), "shared", true))).toEqual({ code: grpc.status.FAILED_PRECONDITION, reason: "VOLUME_IN_USE" });
    // Another VM's own volume: read-only, since its VM writes it.
    expect(await failure(volumes.attachVolume({ vm: "third", volume: own("other", "private"), name: "peek", rw: true, order: 0 }))).toEqual({
      code: grpc.status.FAILED_PRECONDITION,
      reason: "VOLUME_IN_USE",
    });
    const peeked = (await volumes.attachVolume({ vm: "third", volume: own("other", "private"), name: "peek", rw: false, order: 0 })).volume!;
    expect(peeked.attachments).toEqual([expect.objectContaining({ vm: "third", name: "peek", rw: false })]);
  });

  it("are not changed under a running VM: hot-plug is the hypervisor's to offer, and an attached volume keeps its content while the VM runs", async () => {
    await vms.startVm({ vm: "work" });
    expect(await failure(attach("work", pooled("spare"), "spare"))).toEqual({ code: grpc.status.FAILED_PRECONDITION, reason: "CAPABILITY_MISSING" });
    expect(await failure(volumes.detachVolume({ vm: "work", name: "logs" }))).toEqual({ code: grpc.status.FAILED_PRECONDITION, reason: "CAPABILITY_MISSING" });
    expect(await failure(volumes.importVolume(importStream(pooled("data"), pattern(Number(MiB), 1))))).toEqual({ code: grpc.status.FAILED_PRECONDITION, reason: "VOLUME_IN_USE" });
    expect(await failure(volumes.clearVolume({ volume: pooled("logs") }))).toEqual({ code: grpc.status.FAILED_PRECONDITION, reason: "VOLUME_IN_USE" });
    await vms.killVm({ vm: "work" });
    await volumes.importVolume(importStream(pooled("data"), pattern(Number(MiB), 1)));
  });

  it("are not deleted while attached, nor is a VM whose own volume another VM has attached", async () => {
    expect(await failure(volumes.deleteVolume({ pool: "default", vid: "data" }))).toEqual({ code: grpc.status.FAILED_PRECONDITION, reason: "VOLUME_IN_USE" });
    expect(await failure(vms.removeVm({ vm: "other" }))).toEqual({ code: grpc.status.FAILED_PRECONDITION, reason: "VOLUME_IN_USE" });
    expect((await volumes.getVolume({ volume: own("other", "private") })).volume?.vm).toBe("other");
  });

  it("detach idempotently with allow_missing; a VM's own volume is not detached", async () => {
    expect(await failure(volumes.detachVolume({ vm: "work", name: "private" }))).toEqual({ code: grpc.status.FAILED_PRECONDITION, reason: "VOLUME_OWNED" });
    expect(await failure(volumes.detachVolume({ vm: "work", name: "nothing" }))).toEqual({ code: grpc.status.NOT_FOUND, reason: "VOLUME_NOT_ATTACHED" });
    await volumes.detachVolume({ vm: "work", name: "nothing", allowMissing: true });
    await volumes.detachVolume({ vm: "work", name: "data" });
    await volumes.detachVolume({ vm: "work", name: "data", allowMissing: true });
    expect((await volumes.getVolume({ volume: pooled("data") })).volume?.attachments).toEqual([]);
    await volumes.detachVolume({ vm: "third", name: "peek" });
    await vms.removeVm({ vm: "other" });
    // Its attachments went with it; the volumes stay in their pool.
    expect((await volumes.getVolume({ volume: pooled("shared") })).volume?.attachments.map((a) => a.vm)).toEqual(["work"]);
    await volumes.deleteVolume({ pool: "default", vid: "data" });
  });

  it("tell each attach and detach about the VM, naming the volume and the disk", async () => {
    const events = await stopAndReadEvents(server);
    const attached = events.find((event) => event.name === "volume-attach" && event.kwargs.name === "data");
    expect(attached).toMatchObject({ subject: "work", kwargs: { pool: "default", vid: "data", vm: "work", name: "data", rw: "True", order: "1" } });
    expect(events.filter((event) => event.name === "volume-attach")).toHaveLength(5);
    const detached = events.filter((event) => event.name === "volume-detach").map((event) => [event.subject, event.kwargs.vid, event.kwargs.name]);
    expect(detached).toEqual([
      ["work", "data", "data"],
      ["third", expect.stringMatching(/^vms\/[0-9a-f-]{36}\/private$/), "peek"],
    ]);
  });
});
