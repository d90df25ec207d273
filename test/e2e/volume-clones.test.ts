import * as grpc from "@grpc/grpc-js";
import * as fs from "node:fs";
import * as path from "node:path";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { OperationKind, OperationMetadataSchema, ProgressUnit } from "../../gen/steward/v1/operation_pb";
import { PoolService } from "../../gen/steward/v1/pool_service_pb";
import { VmClass } from "../../gen/steward/v1/vm_pb";
import { VmService } from "../../gen/steward/v1/vm_service_pb";
import { CloneVolumeResponseSchema, VolumeService } from "../../gen/steward/v1/volume_service_pb";
import type { Operation } from "../../gen/google/longrunning/operations_pb";
import { responseOf } from "../../src/client/operation-results";
import { createClient, type StewardClient } from "../../src/client/steward-client";
import { rpcError } from "../fixtures/expect-rpc-error";
import { stopAndReadEvents } from "../fixtures/stored-events";
import { startTestServer, type TestServer } from "../fixtures/test-server";
import { makeTempDir, removeDir } from "../fixtures/temp-dir";
import { collect, importStream, pattern, rebuild, sha256, sparseContent } from "../fixtures/volume-bytes";

const MiB = 1024 * 1024;

describe("CloneVolume", () => {
  let server: TestServer;
  let volumes: StewardClient<typeof VolumeService>;
  let vms: StewardClient<typeof VmService>;
  let pools: StewardClient<typeof PoolService>;
  let elsewhere: string;
  const ref = (vid: string, pool = "default") => ({ pool, vid, vm: "", name: "" });
  const content = async (volume: ReturnType<typeof ref>) => rebuild(await collect(volumes.exportVolume({ volume }))).content;
  const cloned = (op: Operation) => responseOf(op, CloneVolumeResponseSchema).volume!;
  const metadata = (op: Operation) => anyUnpack(op.metadata!, OperationMetadataSchema)!;

  beforeAll(async () => {
    elsewhere = makeTempDir("steward-clones-");
    server = await startTestServer();
    volumes = createClient(VolumeService, server.tcp);
    vms = createClient(VmService, server.tcp);
    pools = createClient(PoolService, server.tcp);
    await pools.addPool({ name: "images", driver: "qcow2", parameters: { dir_path: path.join(elsewhere, "images") } });
    for (const pool of ["default", "images"]) {
      await volumes.createVolume({ pool, vid: "source", sizeBytes: 16n * BigInt(MiB) });
      await volumes.importVolume(importStream(ref("source", pool), sparseContent()));
    }
  });

  afterAll(async () => {
    volumes?.close();
    vms?.close();
    pools?.close();
    await server?.stop();
    removeDir(elsewhere);
  });

  it("copies within a qcow2 pool as an overlay, done at once, the copy independent of its source", async () => {
    await volumes.createVolume({ pool: "images", vid: "copy", sizeBytes: BigInt(MiB) });
    const op = await volumes.cloneVolume({ source: ref("source", "images"), target: ref("copy", "images") });
    expect(op.done).toBe(true);
    expect(cloned(op)).toMatchObject({ pool: "images", vid: "copy", sizeBytes: 16n * BigInt(MiB) });
    expect(metadata(op)).toMatchObject({ kind: OperationKind.CLONE_VOLUME, progressUnit: ProgressUnit.BYTES, progressDone: 16n * BigInt(MiB), progressTotal: 16n * BigInt(MiB) });
    expect((await content(ref("copy", "images"))).equals(sparseContent())).toBe(true);

    await volumes.importVolume(importStream(ref("source", "images"), pattern(16 * MiB, 7)));
    expect((await content(ref("copy", "images"))).equals(sparseContent())).toBe(true);
    await volumes.importVolume(importStream(ref("source", "images"), sparseContent()));
  });

  it("copies byte by byte where it must (raw files, another pool), keeping holes, with its progress in bytes", async () => {
    for (const [from, to] of [
      ["default", "default"],
      ["images", "default"],
      ["default", "images"],
    ]) {
      const vid = `from-${from}`;
      await volumes.createVolume({ pool: to, vid, sizeBytes: BigInt(MiB) });
      await volumes.importVolume(importStream(ref(vid, to), pattern(MiB, 3)));
      const op = await volumes.cloneVolume({ source: ref("source", from), target: ref(vid, to) });
      expect({ from, to, done: op.done, error: op.result.case }).toEqual({ from, to, done: true, error: "response" });
      expect(metadata(op)).toMatchObject({ progressDone: 16n * BigInt(MiB), progressTotal: 16n * BigInt(MiB) });
      const copy = cloned(op);
      expect(copy.sizeBytes).toBe(16n * BigInt(MiB));
      expect(Number(copy.usageBytes)).toBeLessThan(3 * MiB);
      expect((await content(ref(vid, to))).equals(sparseContent())).toBe(true);
    }
  });

  it("is retry-safe with request_id: the retry gets the same operation", async () => {
    await volumes.createVolume({ pool: "default", vid: "retried", sizeBytes: BigInt(MiB) });
    const request = { source: ref("source"), target: ref("retried"), requestId: "6f1d1d0e-5b7a-4c53-9b0e-2f5f3c9a0b11" };
    const first = await volumes.cloneVolume(request);
    expect((await volumes.cloneVolume(request)).name).toBe(first.name);
    const reused = await rpcError(volumes.cloneVolume({ ...request, target: ref("source", "images") }));
    expect(reused.info).toMatchObject({ reason: "REQUEST_ID_REUSED" });
  });

  it("refuses, with no operation made, a missing volume, a clone onto itself, and a target whose VM runs", async () => {
    const missing = await rpcError(volumes.cloneVolume({ source: ref("nothing"), target: ref("source") }));
    expect({ code: missing.code, reason: missing.info?.reason }).toEqual({ code: grpc.status.NOT_FOUND, reason: "VOLUME_NOT_FOUND" });
    const itself = await rpcError(volumes.cloneVolume({ source: ref("source"), target: ref("source") }));
    expect({ code: itself.code, field: itself.info?.fieldViolations[0]?.field }).toEqual({ code: grpc.status.INVALID_ARGUMENT, field: "target" });
    const noTarget = await rpcError(volumes.cloneVolume({ source: ref("source") }));
    expect({ code: noTarget.code, reason: noTarget.info?.reason, field: noTarget.info?.fieldViolations[0]?.field }).toEqual({
      code: grpc.status.INVALID_ARGUMENT,
      reason: "INVALID_VOLUME_REF",
      field: "target",
    });

    await vms.createVm({ name: "runner", klass: VmClass.STANDALONE_VM, label: "red" });
    await vms.startVm({ vm: "runner" });
    const running = await rpcError(volumes.cloneVolume({ source: ref("source"), target: { vm: "runner", name: "private", pool: "", vid: "" } }));
    expect({ code: running.code, reason: running.info?.reason }).toEqual({ code: grpc.status.FAILED_PRECONDITION, reason: "VM_NOT_HALTED" });
    await vms.killVm({ vm: "runner" });

    const op = await volumes.cloneVolume({ source: ref("source"), target: { vm: "runner", name: "private", pool: "", vid: "" } });
    expect(metadata(op)).toMatchObject({ target: "runner" });
    const own = (await volumes.getVolume({ volume: { vm: "runner", name: "private", pool: "", vid: "" } })).volume!;
    expect(sha256(fs.readFileSync(own.hostPath))).toBe(sha256(sparseContent()));
  });

  it("tells the copy as an import of the target, naming its source", async () => {
    const events = await stopAndReadEvents(server);
    const begin = events.find((event) => event.name === "volume-import-begin" && event.kwargs.vid === "copy");
    expect(begin?.kwargs).toMatchObject({ pool: "images", source_pool: "images", source_vid: "source", size_bytes: String(16 * MiB) });
    expect(events.find((event) => event.name === "volume-import-end" && event.kwargs.vid === "copy")?.kwargs).toMatchObject({ success: "True" });
    const ofVm = events.find((event) => event.name === "volume-import-begin" && event.subject === "runner");
    expect(ofVm?.kwargs).toMatchObject({ source_pool: "default", source_vid: "source" });
  });
});
