import * as grpc from "@grpc/grpc-js";
import * as fs from "node:fs";
import * as path from "node:path";
import { randomUUID } from "node:crypto";
import { PoolService } from "../../gen/steward/v1/pool_service_pb";
import { VolumeFormat } from "../../gen/steward/v1/volume_pb";
import { VolumeService } from "../../gen/steward/v1/volume_service_pb";
import { createClient, type StewardClient } from "../../src/client/steward-client";
import { rpcError } from "../fixtures/expect-rpc-error";
import { stopAndReadEvents } from "../fixtures/stored-events";
import { startTestServer, type TestServer } from "../fixtures/test-server";
import { makeTempDir, removeDir } from "../fixtures/temp-dir";

const MiB = 1024n * 1024n;

describe("volumes of pools", () => {
  let server: TestServer;
  let pools: StewardClient<typeof PoolService>;
  let volumes: StewardClient<typeof VolumeService>;
  let elsewhere: string;
  const ref = (pool: string, vid: string) => ({ pool, vid, vm: "", name: "" });

  beforeAll(async () => {
    elsewhere = makeTempDir("steward-volumes-");
    server = await startTestServer();
    pools = createClient(PoolService, server.tcp);
    volumes = createClient(VolumeService, server.tcp);
    await pools.addPool({ name: "images", driver: "qcow2", parameters: { dir_path: path.join(elsewhere, "images") } });
  });

  afterAll(async () => {
    pools?.close();
    volumes?.close();
    await server?.stop();
    removeDir(elsewhere);
  });

  it("are made sparse in the pool asked, raw or qcow2 as the pool keeps them, with their file on the host", async () => {
    const { volume, existed } = await volumes.createVolume({ pool: "default", vid: "disks/data", sizeBytes: 64n * MiB });
    expect(existed).toBe(false);
    expect(volume).toMatchObject({ pool: "default", vid: "disks/data", vm: "", sizeBytes: 64n * MiB, format: VolumeFormat.RAW, rw: true, revisionsToKeep: 1, internal: false });
    expect(volume!.hostPath).toBe(path.join(server.dataDir, "pools", "default", "disks", "data.img"));
    expect(fs.statSync(volume!.hostPath).size).toBe(64 * 1024 * 1024);
    expect(Number(volume!.usageBytes)).toBeLessThan(1024 * 1024);
    expect(Number(volume!.createTime!.seconds)).toBeGreaterThan(Date.now() / 1000 - 60);

    const image = await volumes.createVolume({ pool: "images", vid: "base", sizeBytes: 8n * MiB, format: VolumeFormat.QCOW2 });
    expect(image.volume).toMatchObject({ format: VolumeFormat.QCOW2, hostPath: path.join(elsewhere, "images", "base.qcow2") });
    const wrongFormat = await rpcError(volumes.createVolume({ pool: "default", vid: "q", sizeBytes: MiB, format: VolumeFormat.QCOW2 }));
    expect({ code: wrongFormat.code, field: wrongFormat.info?.fieldViolations[0]?.field }).toEqual({ code: grpc.status.INVALID_ARGUMENT, field: "format" });
  });

  it("are made once: the same again is success with existed, another size ALREADY_EXISTS", async () => {
    await volumes.createVolume({ pool: "default", vid: "twice", sizeBytes: MiB });
    expect((await volumes.createVolume({ pool: "default", vid: "twice", sizeBytes: MiB })).existed).toBe(true);
    expect((await rpcError(volumes.createVolume({ pool: "default", vid: "twice", sizeBytes: 2n * MiB }))).info).toMatchObject({ reason: "VOLUME_EXISTS" });
  });

  it("refuse bad vids, sizes and pools, naming them", async () => {
    for (const vid of ["../escape", "/etc/passwd", "a//b", "a b"]) {
      expect((await rpcError(volumes.createVolume({ pool: "default", vid, sizeBytes: MiB }))).info).toMatchObject({ reason: "INVALID_VOLUME_ID" });
    }
    expect((await rpcError(volumes.createVolume({ pool: "default", vid: "odd", sizeBytes: 1000n }))).info).toMatchObject({ reason: "INVALID_VOLUME_SIZE", fieldViolations: [{ field: "size_bytes" }] });
    expect((await rpcError(volumes.createVolume({ pool: "nowhere", vid: "x", sizeBytes: MiB }))).info).toMatchObject({ reason: "POOL_NOT_FOUND" });
    expect(fs.existsSync(path.join(server.dataDir, "pools", "escape.img"))).toBe(false);
  });

  it("are named by exactly one form of VolumeRef", async () => {
    for (const volume of [undefined, { pool: "default", vid: "twice", vm: "dom0", name: "root" }, { pool: "", vid: "", vm: "", name: "" }]) {
      expect((await rpcError(volumes.getVolume({ volume }))).info).toMatchObject({ reason: "INVALID_VOLUME_REF" });
    }
    expect((await rpcError(volumes.getVolume({ volume: ref("default", "none") }))).info).toMatchObject({ reason: "VOLUME_NOT_FOUND" });
  });

  it("are listed by pool, paged, with the bytes they take over all pages", async () => {
    for (const vid of ["list/a", "list/b", "list/c"]) await volumes.createVolume({ pool: "images", vid, sizeBytes: MiB });
    const all = await volumes.listVolumes({ pool: "images" });
    expect(all.volumes.map((volume) => volume.vid)).toEqual(["base", "list/a", "list/b", "list/c"]);
    expect(all.totalSize).toBe(4);
    expect(all.totalUsageBytes).toBe(all.volumes.reduce((sum, volume) => sum + volume.usageBytes, 0n));
    const first = await volumes.listVolumes({ pool: "images", pageSize: 3 });
    const rest = await volumes.listVolumes({ pool: "images", pageSize: 3, pageToken: first.nextPageToken });
    expect([...first.volumes, ...rest.volumes].map((volume) => volume.vid)).toEqual(all.volumes.map((volume) => volume.vid));
    expect(rest.totalUsageBytes).toBe(all.totalUsageBytes);
    expect((await rpcError(volumes.listVolumes({}))).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect((await pools.getPool({ pool: "images" })).pool?.volumeCount).toBe(4);
  });

  it("grow, shrink only when allowed, and stay within their limit", async () => {
    await volumes.createVolume({ pool: "default", vid: "sized", sizeBytes: 4n * MiB });
    expect((await volumes.resizeVolume({ volume: ref("default", "sized"), sizeBytes: 8n * MiB })).volume?.sizeBytes).toBe(8n * MiB);
    expect((await rpcError(volumes.resizeVolume({ volume: ref("default", "sized"), sizeBytes: 2n * MiB }))).info).toMatchObject({ reason: "VOLUME_SHRINK" });
    expect((await volumes.resizeVolume({ volume: ref("default", "sized"), sizeBytes: 2n * MiB, allowShrink: true })).volume?.sizeBytes).toBe(2n * MiB);

    expect((await rpcError(volumes.setVolumeLimit({ volume: ref("default", "sized"), limitBytes: MiB }))).info).toMatchObject({ reason: "VOLUME_OVER_LIMIT" });
    expect((await volumes.setVolumeLimit({ volume: ref("default", "sized"), limitBytes: 4n * MiB })).volume?.limitBytes).toBe(4n * MiB);
    const over = await rpcError(volumes.resizeVolume({ volume: ref("default", "sized"), sizeBytes: 8n * MiB }));
    expect(over.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(over.info).toMatchObject({ reason: "VOLUME_LIMIT_EXCEEDED", metadata: { limit_bytes: String(4n * MiB), needed_bytes: String(8n * MiB) } });
  });

  it("keep revisions: snapshot (retry-safe), list newest first, revert keeping the current content, prune past revisions_to_keep", async () => {
    const target = ref("images", "kept");
    await volumes.createVolume({ pool: "images", vid: "kept", sizeBytes: MiB });
    await volumes.setVolumeProperty({ volume: target, property: { case: "revisionsToKeep", value: 2 } });
    const requestId = randomUUID();
    const first = (await volumes.snapshotVolume({ volume: target, requestId })).revision!;
    expect((await volumes.snapshotVolume({ volume: target, requestId })).revision).toEqual(first);
    const second = (await volumes.snapshotVolume({ volume: target })).revision!;
    const third = (await volumes.snapshotVolume({ volume: target })).revision!;
    expect((await volumes.listSnapshots({ volume: target })).revisions.map((revision) => revision.revision)).toEqual([third.revision, second.revision]);

    expect((await rpcError(volumes.revertVolume({ volume: target, revision: first.revision }))).info).toMatchObject({ reason: "REVISION_NOT_FOUND" });
    expect((await volumes.listSnapshots({ volume: target })).revisions).toHaveLength(2);
    await volumes.revertVolume({ volume: target, revision: second.revision });
    const after = (await volumes.listSnapshots({ volume: target })).revisions.map((revision) => revision.revision);
    // The content before the revert was kept as the newest revision; the oldest other went.
    expect(after).toHaveLength(2);
    expect(after).toContain(second.revision);
    expect(after).not.toContain(third.revision);
  });

  it("clear, take properties, and are deleted idempotently; a pool holding one is not removed", async () => {
    const target = ref("images", "cleared");
    await volumes.createVolume({ pool: "images", vid: "cleared", sizeBytes: MiB });
    expect((await volumes.clearVolume({ volume: target })).volume?.sizeBytes).toBe(MiB);
    expect((await volumes.setVolumeProperty({ volume: target, property: { case: "rw", value: false } })).volume?.rw).toBe(false);
    expect((await rpcError(volumes.setVolumeProperty({ volume: target, property: { case: "revisionsToKeep", value: 5000 } }))).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect((await rpcError(pools.removePool({ pool: "images" }))).info).toMatchObject({ reason: "POOL_IN_USE" });
    expect((await volumes.deleteVolume({ pool: "images", vid: "cleared" })).deleted).toBe(true);
    expect((await volumes.deleteVolume({ pool: "images", vid: "cleared" })).deleted).toBe(false);
    expect(fs.existsSync(path.join(elsewhere, "images", "cleared.qcow2"))).toBe(false);
  });
});

describe("volume events", () => {
  it("tell each change with the pool and vid, about the host for a pool's own volume", async () => {
    const server = await startTestServer();
    const volumes = createClient(VolumeService, server.tcp);
    const target = { pool: "default", vid: "ev", vm: "", name: "" };
    await volumes.createVolume({ pool: "default", vid: "ev", sizeBytes: MiB });
    await volumes.resizeVolume({ volume: target, sizeBytes: 2n * MiB });
    const { revision } = await volumes.snapshotVolume({ volume: target });
    await volumes.resizeVolume({ volume: target, sizeBytes: 3n * MiB });
    // The revision brings back its size, and says so.
    await volumes.revertVolume({ volume: target, revision: revision!.revision });
    await volumes.clearVolume({ volume: target });
    await volumes.setVolumeLimit({ volume: target, limitBytes: 4n * MiB });
    await volumes.deleteVolume({ pool: "default", vid: "ev" });
    volumes.close();
    const events = (await stopAndReadEvents(server)).filter((event) => event.name.startsWith("volume-"));
    const pv = { pool: "default", vid: "ev" };
    expect(events.map((event) => [event.subject, event.name, event.kwargs])).toEqual([
      ["", "volume-create", { ...pv, size_bytes: String(MiB), format: "raw" }],
      ["", "volume-resize", { ...pv, size_bytes: String(2n * MiB), old_size_bytes: String(MiB) }],
      ["", "volume-snapshot", { ...pv, revision: revision!.revision }],
      ["", "volume-resize", { ...pv, size_bytes: String(3n * MiB), old_size_bytes: String(2n * MiB) }],
      ["", "volume-snapshot", { ...pv, revision: expect.any(String) }],
      ["", "volume-revert", { ...pv, revision: revision!.revision }],
      ["", "volume-resize", { ...pv, size_bytes: String(2n * MiB), old_size_bytes: String(3n * MiB) }],
      ["", "volume-clear", pv],
      ["", "volume-set:limit_bytes", { ...pv, newvalue: String(4n * MiB), oldvalue: "0" }],
      ["", "volume-delete", pv],
    ]);
  });
});
