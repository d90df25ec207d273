import * as grpc from "@grpc/grpc-js";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb";
import { PoolService } from "../../gen/steward/v1/pool_service_pb";
import { VolumeFormat } from "../../gen/steward/v1/volume_pb";
import { VolumeService } from "../../gen/steward/v1/volume_service_pb";
import { VmClass } from "../../gen/steward/v1/vm_pb";
import { VmService } from "../../gen/steward/v1/vm_service_pb";
import type { Operation } from "../../gen/google/longrunning/operations_pb";
import { createClient, type StewardClient } from "../../src/client/steward-client";
import { rpcError } from "../fixtures/expect-rpc-error";
import { makeLoopFilesystem, type LoopFilesystem } from "../fixtures/loop-filesystem";
import { stopAndReadEvents } from "../fixtures/stored-events";
import { startTestServer, type TestServer } from "../fixtures/test-server";
import { makeTempDir, removeDir } from "../fixtures/temp-dir";
import { collect, importStream, pattern, rebuild } from "../fixtures/volume-bytes";

const MiB = 1024 * 1024;

/** A failed operation's status: its code and the ErrorInfo's reason. */
function failureOf(op: Operation): { code: number; reason: string | undefined } {
  if (op.result.case !== "error") throw new Error(`the operation did not fail: ${op.result.case}`);
  const status = op.result.value;
  const info = status.details.map((detail) => anyUnpack(detail, ErrorInfoSchema)).find((unpacked) => unpacked !== undefined);
  return { code: status.code, reason: info?.reason };
}

describe("pools that run out of room: quotas, full filesystems and pool-space-low", () => {
  let server: TestServer;
  let pools: StewardClient<typeof PoolService>;
  let volumes: StewardClient<typeof VolumeService>;
  let vms: StewardClient<typeof VmService>;
  let elsewhere: string;
  let small: LoopFilesystem;
  const ref = (pool: string, vid: string) => ({ pool, vid, vm: "", name: "" });
  const sha = async (volume: ReturnType<typeof ref>) => rebuild(await collect(volumes.exportVolume({ volume }))).trailer.sha256;
  const temporaries = (folder: string) => fs.readdirSync(path.join(folder, "tmp~"));

  beforeAll(async () => {
    elsewhere = makeTempDir("steward-space-");
    small = makeLoopFilesystem("ext4", 32);
    server = await startTestServer(["--pool-space-low", "50"]);
    pools = createClient(PoolService, server.tcp);
    volumes = createClient(VolumeService, server.tcp);
    vms = createClient(VmService, server.tcp);
    await pools.addPool({ name: "capped", driver: "file", parameters: { dir_path: path.join(elsewhere, "capped") } });
    await pools.setPoolLimit({ pool: "capped", limitBytes: BigInt(12 * MiB) });
    await pools.addPool({ name: "small", driver: "file", parameters: { dir_path: path.join(small.mountPoint, "pool") } });
    await volumes.createVolume({ pool: "default", vid: "dense", sizeBytes: BigInt(16 * MiB) });
    await volumes.importVolume(importStream(ref("default", "dense"), pattern(16 * MiB, 5)));
  });

  afterAll(async () => {
    pools?.close();
    volumes?.close();
    vms?.close();
    await server?.stop();
    removeDir(elsewhere);
    small?.remove();
  });

  it("refuse what would take a pool past its limit, naming the limit and the bytes, and change nothing", async () => {
    const tooBig = await rpcError(volumes.createVolume({ pool: "capped", vid: "huge", sizeBytes: BigInt(32 * MiB) }));
    expect({ code: tooBig.code, reason: tooBig.info?.reason, metadata: tooBig.info?.metadata }).toMatchObject({
      code: grpc.status.RESOURCE_EXHAUSTED,
      reason: "POOL_QUOTA_EXCEEDED",
      metadata: { pool: "capped", limit_bytes: String(12 * MiB), needed_bytes: String(32 * MiB) },
    });
    expect(tooBig.message).toContain(String(12 * MiB));
    expect((await rpcError(volumes.getVolume({ volume: ref("capped", "huge") }))).code).toBe(grpc.status.NOT_FOUND);

    await volumes.createVolume({ pool: "capped", vid: "data", sizeBytes: BigInt(8 * MiB) });
    const grown = await rpcError(volumes.resizeVolume({ volume: ref("capped", "data"), sizeBytes: BigInt(24 * MiB) }));
    expect({ code: grown.code, reason: grown.info?.reason, needed: grown.info?.metadata.needed_bytes }).toEqual({ code: grpc.status.RESOURCE_EXHAUSTED, reason: "POOL_QUOTA_EXCEEDED", needed: String(16 * MiB) });
    expect((await volumes.getVolume({ volume: ref("capped", "data") })).volume?.sizeBytes).toBe(BigInt(8 * MiB));

    await volumes.importVolume(importStream(ref("capped", "data"), pattern(8 * MiB, 1)));
    const before = await sha(ref("capped", "data"));
    // A second import writes beside the first content, which stays until the swap: 8 MiB more.
    const imported = await rpcError(volumes.importVolume(importStream(ref("capped", "data"), pattern(8 * MiB, 2))));
    expect({ code: imported.code, reason: imported.info?.reason }).toEqual({ code: grpc.status.RESOURCE_EXHAUSTED, reason: "POOL_QUOTA_EXCEEDED" });
    // A file pool's revision is a copy of the allocated bytes.
    const snapshot = await rpcError(volumes.snapshotVolume({ volume: ref("capped", "data") }));
    expect({ code: snapshot.code, reason: snapshot.info?.reason }).toEqual({ code: grpc.status.RESOURCE_EXHAUSTED, reason: "POOL_QUOTA_EXCEEDED" });
    expect((await volumes.listSnapshots({ volume: ref("capped", "data") })).revisions).toHaveLength(0);

    await volumes.createVolume({ pool: "capped", vid: "copy", sizeBytes: BigInt(2 * MiB) });
    const clone = await volumes.cloneVolume({ source: ref("default", "dense"), target: ref("capped", "copy") });
    expect(failureOf(clone)).toEqual({ code: grpc.status.RESOURCE_EXHAUSTED, reason: "POOL_QUOTA_EXCEEDED" });
    expect((await volumes.getVolume({ volume: ref("capped", "copy") })).volume?.sizeBytes).toBe(BigInt(2 * MiB));
    expect(await sha(ref("capped", "data"))).toBe(before);

    // Sizes that cost nothing now count too: a sparse source's size, an image's virtual size.
    await volumes.createVolume({ pool: "default", vid: "sparse", sizeBytes: BigInt(64 * MiB) });
    const sparseClone = await volumes.cloneVolume({ source: ref("default", "sparse"), target: ref("capped", "copy") });
    expect(failureOf(sparseClone)).toEqual({ code: grpc.status.RESOURCE_EXHAUSTED, reason: "POOL_QUOTA_EXCEEDED" });
    const image = path.join(elsewhere, "huge.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", image, "100G"]);
    const bytes = fs.readFileSync(image);
    const header = { target: { case: "volume" as const, value: ref("capped", "copy") }, sizeBytes: BigInt(bytes.length), format: VolumeFormat.QCOW2 };
    const huge = await rpcError(volumes.importVolume([{ kind: { case: "header", value: header } }, { kind: { case: "chunk", value: bytes } }]));
    expect({ code: huge.code, reason: huge.info?.reason }).toEqual({ code: grpc.status.RESOURCE_EXHAUSTED, reason: "POOL_QUOTA_EXCEEDED" });
    expect((await volumes.getVolume({ volume: ref("capped", "copy") })).volume?.sizeBytes).toBe(BigInt(2 * MiB));
    expect(temporaries(path.join(elsewhere, "capped"))).toEqual([]);
  });

  it("refuse a revert that would bring back a size past the volume's limit, and bring back the size of one within it", async () => {
    const key = ref("default", "shrunk");
    await volumes.createVolume({ pool: "default", vid: "shrunk", sizeBytes: BigInt(4 * MiB) });
    await volumes.importVolume(importStream(key, pattern(4 * MiB, 3)));
    const large = (await volumes.snapshotVolume({ volume: key })).revision!.revision;
    await volumes.importVolume(importStream(key, pattern(MiB, 4)));
    const small = await sha(key);
    await volumes.setVolumeLimit({ volume: key, limitBytes: BigInt(2 * MiB) });
    const refused = await rpcError(volumes.revertVolume({ volume: key, revision: large }));
    expect({ code: refused.code, reason: refused.info?.reason }).toEqual({ code: grpc.status.RESOURCE_EXHAUSTED, reason: "VOLUME_LIMIT_EXCEEDED" });
    expect((await volumes.getVolume({ volume: key })).volume?.sizeBytes).toBe(BigInt(MiB));
    expect(await sha(key)).toBe(small);
    expect((await volumes.listSnapshots({ volume: key })).revisions.map((saved) => saved.revision)).toEqual([large]);

    await volumes.setVolumeLimit({ volume: key, limitBytes: 0n });
    await volumes.revertVolume({ volume: key, revision: large });
    expect((await volumes.getVolume({ volume: key })).volume?.sizeBytes).toBe(BigInt(4 * MiB));
  });

  it("keep a new VM's volumes within the pool's limit: the VM is not made", async () => {
    const op = await vms.createVm({ name: "too-big", klass: VmClass.STANDALONE_VM, label: "red", pool: "capped" });
    expect(failureOf(op)).toEqual({ code: grpc.status.RESOURCE_EXHAUSTED, reason: "POOL_QUOTA_EXCEEDED" });
    expect((await rpcError(vms.getVm({ vm: "too-big" }))).code).toBe(grpc.status.NOT_FOUND);
    expect((await volumes.listVolumes({ pool: "capped" })).volumes.map((volume) => volume.vid).sort()).toEqual(["copy", "data"]);
  });

  it("answer RESOURCE_EXHAUSTED when the filesystem fills up mid-import, mid-snapshot or mid-clone, leaving the old content and no temporary file", async () => {
    const folder = path.join(small.mountPoint, "pool");
    await volumes.createVolume({ pool: "small", vid: "big", sizeBytes: BigInt(20 * MiB) });
    await volumes.importVolume(importStream(ref("small", "big"), pattern(20 * MiB, 3)));
    const before = await sha(ref("small", "big"));

    const imported = await rpcError(volumes.importVolume(importStream(ref("small", "big"), pattern(20 * MiB, 4))));
    expect({ code: imported.code, reason: imported.info?.reason }).toEqual({ code: grpc.status.RESOURCE_EXHAUSTED, reason: "POOL_FULL" });
    expect(await sha(ref("small", "big"))).toBe(before);
    expect(temporaries(folder)).toEqual([]);

    const snapshot = await rpcError(volumes.snapshotVolume({ volume: ref("small", "big") }));
    expect({ code: snapshot.code, reason: snapshot.info?.reason }).toEqual({ code: grpc.status.RESOURCE_EXHAUSTED, reason: "POOL_FULL" });
    expect((await volumes.listSnapshots({ volume: ref("small", "big") })).revisions).toHaveLength(0);
    expect(temporaries(folder)).toEqual([]);

    await volumes.createVolume({ pool: "small", vid: "copy", sizeBytes: BigInt(MiB) });
    await volumes.importVolume(importStream(ref("small", "copy"), pattern(MiB, 6)));
    const copyBefore = await sha(ref("small", "copy"));
    const clone = await volumes.cloneVolume({ source: ref("default", "dense"), target: ref("small", "copy") });
    expect(failureOf(clone)).toEqual({ code: grpc.status.RESOURCE_EXHAUSTED, reason: "POOL_FULL" });
    expect(await sha(ref("small", "copy"))).toBe(copyBefore);
    expect(await sha(ref("small", "big"))).toBe(before);
    expect(temporaries(folder)).toEqual([]);
  });

  it("tell pool-space-low once a pool's room falls below the threshold", async () => {
    const events = await stopAndReadEvents(server);
    // The default pool's is the host's disk, which this test does not control.
    const low = events.filter((event) => event.name === "pool-space-low" && event.kwargs.pool !== "default");
    // The capped pool's room is what its limit leaves; the small one's, its filesystem's free space.
    expect(low.map((event) => event.kwargs.pool).sort()).toEqual(["capped", "small"]);
    for (const event of low) {
      expect(event.kwargs).toMatchObject({ threshold_percent: "50" });
      expect(Number(event.kwargs.free_bytes)).toBeLessThan(Number(event.kwargs.size_bytes) / 2);
    }
    expect(low.find((event) => event.kwargs.pool === "capped")?.kwargs.size_bytes).toBe(String(12 * MiB));
  });
});
