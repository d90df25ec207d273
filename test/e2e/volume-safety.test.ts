import * as grpc from "@grpc/grpc-js";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { PoolService } from "../../gen/steward/v1/pool_service_pb";
import { VolumeService } from "../../gen/steward/v1/volume_service_pb";
import { createClient, type StewardClient } from "../../src/client/steward-client";
import { rpcError } from "../fixtures/expect-rpc-error";
import { startTestServer, type TestServer } from "../fixtures/test-server";
import { makeTempDir, removeDir } from "../fixtures/temp-dir";
import { collect, importStream, pattern } from "../fixtures/volume-bytes";

const MiB = 1024 * 1024;
const BAD_VIDS = ["../escape", "/etc/passwd", "a/../../b", "a\0b", ".", "..", "a//b", "vms/../../../x", "a b", "", "x".repeat(129), "a/".repeat(300) + "b"];
const BAD_REVISIONS = ["../../../etc/passwd", "1/../2", "a\0b", "..", "/tmp/x"];

describe("no request reaches outside a pool's folder", () => {
  let server: TestServer;
  let pools: StewardClient<typeof PoolService>;
  let volumes: StewardClient<typeof VolumeService>;
  let elsewhere: string;
  let outside: string;
  const folder = () => path.join(server.dataDir, "pools", "default");
  const ref = (vid: string, pool = "default") => ({ pool, vid, vm: "", name: "" });
  const failure = async (call: Promise<unknown>) => {
    const error = await rpcError(call);
    return { code: error.code, reason: error.info?.reason };
  };
  const unsafe = { code: grpc.status.INVALID_ARGUMENT, reason: "VOLUME_PATH_UNSAFE" };

  beforeAll(async () => {
    elsewhere = makeTempDir("steward-safety-");
    outside = path.join(elsewhere, "outside");
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, "secret.img"), "not Steward's");
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

  it("refuses vids with .., /, NUL or empty segments in every call that names one, touching nothing", async () => {
    for (const vid of BAD_VIDS) {
      const invalid = { vid, code: grpc.status.INVALID_ARGUMENT };
      for (const call of [
        () => volumes.createVolume({ pool: "default", vid, sizeBytes: BigInt(MiB) }),
        () => volumes.deleteVolume({ pool: "default", vid }),
        () => volumes.getVolume({ volume: ref(vid) }),
        () => collect(volumes.exportVolume({ volume: ref(vid) })),
        () => volumes.importVolume(importStream(ref(vid), pattern(MiB, 1))),
        () => volumes.snapshotVolume({ volume: ref(vid) }),
      ]) {
        expect({ vid, code: (await rpcError(call())).code }).toEqual(invalid);
      }
    }
    expect(fs.readdirSync(outside)).toEqual(["secret.img"]);
    expect(fs.existsSync(path.join(server.dataDir, "pools", "escape.img"))).toBe(false);
  });

  it("refuses revisions that are no revision ids, rather than looking for them as paths", async () => {
    await volumes.createVolume({ pool: "default", vid: "kept", sizeBytes: BigInt(MiB) });
    await volumes.snapshotVolume({ volume: ref("kept") });
    for (const revision of BAD_REVISIONS) {
      expect({ revision, code: (await rpcError(collect(volumes.exportVolume({ volume: ref("kept"), revision })))).code }).toEqual({ revision, code: grpc.status.INVALID_ARGUMENT });
      expect({ revision, code: (await rpcError(volumes.revertVolume({ volume: ref("kept"), revision }))).code }).toEqual({ revision, code: grpc.status.INVALID_ARGUMENT });
    }
    expect((await volumes.listSnapshots({ volume: ref("kept") })).revisions).toHaveLength(1);
  });

  it("never follows a symlink someone planted in the pool's folder, for a volume or a folder", async () => {
    fs.symlinkSync(path.join(outside, "secret.img"), path.join(folder(), "planted.img"));
    expect(await failure(volumes.createVolume({ pool: "default", vid: "planted", sizeBytes: BigInt(MiB) }))).toEqual(unsafe);
    fs.symlinkSync(outside, path.join(folder(), "evil"));
    expect(await failure(volumes.createVolume({ pool: "default", vid: "evil/disk", sizeBytes: BigInt(MiB) }))).toEqual(unsafe);

    // A volume of Steward's whose file was swapped for a symlink: read, written or deleted, it is refused.
    await volumes.createVolume({ pool: "default", vid: "swapped", sizeBytes: BigInt(MiB) });
    fs.rmSync(path.join(folder(), "swapped.img"));
    fs.symlinkSync(path.join(outside, "secret.img"), path.join(folder(), "swapped.img"));
    for (const [rpc, call] of [
      ["ExportVolume", () => collect(volumes.exportVolume({ volume: ref("swapped") }))],
      ["ImportVolume", () => volumes.importVolume(importStream(ref("swapped"), pattern(MiB, 2)))],
      ["ResizeVolume", () => volumes.resizeVolume({ volume: ref("swapped"), sizeBytes: BigInt(2 * MiB) })],
      ["SnapshotVolume", () => volumes.snapshotVolume({ volume: ref("swapped") })],
      ["GetVolume", () => volumes.getVolume({ volume: ref("swapped") })],
    ] as const) {
      expect({ rpc, ...(await failure(call())) }).toEqual({ rpc, ...unsafe });
    }
    expect(fs.readFileSync(path.join(outside, "secret.img"), "utf8")).toBe("not Steward's");
    expect(fs.readdirSync(outside)).toEqual(["secret.img"]);
  });

  it("leaves a volume whose delete was refused being deleted, and finishes it at the next DeleteVolume or CreateVolume once it can", async () => {
    for (const next of ["DeleteVolume", "CreateVolume"] as const) {
      const vid = `refused-${next}`;
      await volumes.createVolume({ pool: "default", vid, sizeBytes: BigInt(MiB) });
      const file = path.join(folder(), `${vid}.img`);
      fs.rmSync(file);
      fs.symlinkSync(path.join(outside, "secret.img"), file);
      expect(await failure(volumes.deleteVolume({ pool: "default", vid }))).toEqual(unsafe);
      expect(await failure(volumes.getVolume({ volume: ref(vid) }))).toMatchObject({ code: grpc.status.NOT_FOUND });
      // Not an INTERNAL error for a record left behind: the delete is done again, and says again why it cannot.
      expect(await failure(volumes.deleteVolume({ pool: "default", vid }))).toEqual(unsafe);
      expect(await failure(volumes.createVolume({ pool: "default", vid, sizeBytes: BigInt(MiB) }))).toEqual(unsafe);
      fs.rmSync(file);
      if (next === "DeleteVolume") expect((await volumes.deleteVolume({ pool: "default", vid })).deleted).toBe(true);
      else expect((await volumes.createVolume({ pool: "default", vid, sizeBytes: BigInt(MiB) })).existed).toBe(false);
    }
    expect(fs.readFileSync(path.join(outside, "secret.img"), "utf8")).toBe("not Steward's");
    expect((await volumes.getVolume({ volume: ref("refused-CreateVolume") })).volume?.sizeBytes).toBe(BigInt(MiB));
    expect(await failure(volumes.getVolume({ volume: ref("refused-DeleteVolume") }))).toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it("refuses a qcow2 image of its pool whose backing file someone pointed outside the pool", async () => {
    await volumes.createVolume({ pool: "images", vid: "base", sizeBytes: BigInt(MiB) });
    const image = path.join(elsewhere, "images", "base.qcow2");
    fs.writeFileSync(path.join(outside, "backing.raw"), Buffer.alloc(MiB, 0x41));
    // A folder of the pool that is a symlink to one outside, holding what looks like a revision.
    fs.symlinkSync(outside, path.join(elsewhere, "images", "linked"));
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", path.join(outside, "base.qcow2.1~"), String(MiB)]);
    for (const backing of [path.join(outside, "backing.raw"), "../outside/backing.raw", "linked/base.qcow2.1~"]) {
      execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", backing, "-F", "raw", image, String(MiB)], { cwd: path.dirname(image) });
      for (const call of [() => collect(volumes.exportVolume({ volume: ref("base", "images") })), () => volumes.snapshotVolume({ volume: ref("base", "images") })]) {
        expect({ backing, ...(await failure(call())) }).toEqual({ backing, ...unsafe });
      }
    }
  });

  it("answers INVALID_ARGUMENT for sizes past what the pool's filesystem or format holds, not INTERNAL", async () => {
    const PiB = 1024n ** 5n;
    for (const pool of ["default", "images"]) {
      const made = await rpcError(volumes.createVolume({ pool, vid: "huge", sizeBytes: 4n * PiB }));
      expect({ pool, code: made.code, reason: made.info?.reason }).toEqual({ pool, code: grpc.status.INVALID_ARGUMENT, reason: "INVALID_VOLUME_SIZE" });
      await volumes.createVolume({ pool, vid: "grows", sizeBytes: BigInt(MiB) });
      const grown = await rpcError(volumes.resizeVolume({ volume: ref("grows", pool), sizeBytes: 4n * PiB }));
      expect({ pool, code: grown.code, reason: grown.info?.reason }).toEqual({ pool, code: grpc.status.INVALID_ARGUMENT, reason: "INVALID_VOLUME_SIZE" });
    }
  });

  it("refuses pool folders that are not absolute, or hold NUL", async () => {
    for (const dir of ["relative/pool", `${elsewhere}/a\0b`, ""]) {
      const error = await rpcError(pools.addPool({ name: "bad", driver: "file", parameters: { dir_path: dir } }));
      expect({ dir, code: error.code, field: error.info?.fieldViolations[0]?.field }).toEqual({ dir, code: grpc.status.INVALID_ARGUMENT, field: "parameters[dir_path]" });
    }
  });
});
