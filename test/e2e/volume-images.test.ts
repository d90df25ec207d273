import * as grpc from "@grpc/grpc-js";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { PoolService } from "../../gen/steward/v1/pool_service_pb";
import { VolumeFormat } from "../../gen/steward/v1/volume_pb";
import { VolumeService } from "../../gen/steward/v1/volume_service_pb";
import { createClient, type StewardClient } from "../../src/client/steward-client";
import { rpcError } from "../fixtures/expect-rpc-error";
import { startTestServer, type TestServer } from "../fixtures/test-server";
import { makeTempDir, removeDir } from "../fixtures/temp-dir";
import { collect, importStream, rebuild, sha256, sparseContent, type ImportMessage } from "../fixtures/volume-bytes";

const MiB = 1024 * 1024;

function qemuImg(...args: string[]): string {
  return execFileSync("qemu-img", args, { encoding: "utf8" });
}

/** qemu-img create of a LUKS image, which fails now and then on a busy host (it times PBKDF2): tried again. */
function qemuImgTimingPBKDF(...args: string[]): void {
  for (let attempt = 1; ; attempt++) {
    try {
      execFileSync("qemu-img", args, { stdio: ["ignore", "ignore", "pipe"] });
      return;
    } catch (error) {
      if (attempt >= 5 || !String((error as { stderr?: Buffer }).stderr).includes("accurate CPU usage")) throw error;
    }
  }
}

/** An import of the image file's bytes, as a client sends one. */
function* imageStream(target: { pool: string; vid: string }, image: Buffer): Generator<ImportMessage> {
  for (const message of importStream(target, image)) {
    if (message.kind?.case === "header") yield { kind: { case: "header", value: { ...message.kind.value, format: VolumeFormat.QCOW2 } } };
    else yield message;
  }
}

describe("volumes as qcow2 images: exported and imported, checked", () => {
  let server: TestServer;
  let pools: StewardClient<typeof PoolService>;
  let volumes: StewardClient<typeof VolumeService>;
  let elsewhere: string;
  const ref = (vid: string, pool = "default") => ({ pool, vid, vm: "", name: "" });
  const rawSha = async (volume: ReturnType<typeof ref>) => rebuild(await collect(volumes.exportVolume({ volume }))).trailer.sha256;
  /** A qcow2 image file made with qemu-img from `content`. */
  const imageOf = (name: string, content: Buffer): Buffer => {
    const raw = path.join(elsewhere, `${name}.raw`);
    const image = path.join(elsewhere, `${name}.qcow2`);
    fs.writeFileSync(raw, content);
    qemuImg("convert", "-f", "raw", "-O", "qcow2", raw, image);
    return fs.readFileSync(image);
  };
  const refusal = async (vid: string, image: Buffer, pool = "default") => {
    const error = await rpcError(volumes.importVolume(imageStream(ref(vid, pool), image)));
    return { code: error.code, reason: error.info?.reason, field: error.info?.fieldViolations[0]?.field };
  };

  beforeAll(async () => {
    elsewhere = makeTempDir("steward-images-");
    server = await startTestServer();
    pools = createClient(PoolService, server.tcp);
    volumes = createClient(VolumeService, server.tcp);
    await pools.addPool({ name: "images", driver: "qcow2", parameters: { dir_path: path.join(elsewhere, "images") } });
    for (const pool of ["default", "images"]) {
      await volumes.createVolume({ pool, vid: "disk", sizeBytes: BigInt(16 * MiB) });
      await volumes.importVolume(importStream(ref("disk", pool), sparseContent()));
    }
  });

  afterAll(async () => {
    pools?.close();
    volumes?.close();
    await server?.stop();
    removeDir(elsewhere);
  });

  it("export a standalone qcow2 image of the content, which qemu-img reads and an import takes back, in either kind of pool", async () => {
    for (const [from, to] of [
      ["default", "images"],
      ["images", "default"],
    ]) {
      const { content, trailer, sent } = rebuild(await collect(volumes.exportVolume({ volume: ref("disk", from), format: VolumeFormat.QCOW2 })));
      expect(trailer.sha256).toBe(sha256(content));
      expect(sent).toBeLessThan(4 * MiB);
      const file = path.join(elsewhere, `from-${from}.qcow2`);
      fs.writeFileSync(file, content);
      const info = JSON.parse(qemuImg("info", "--output=json", file)) as { format: string; "virtual-size": number; "backing-filename"?: string };
      expect(info).toMatchObject({ format: "qcow2", "virtual-size": 16 * MiB });
      expect(info["backing-filename"]).toBeUndefined();

      await volumes.createVolume({ pool: to, vid: `back-from-${from}`, sizeBytes: BigInt(MiB) });
      const imported = await volumes.importVolume(imageStream(ref(`back-from-${from}`, to), content));
      expect(imported).toMatchObject({ bytesReceived: BigInt(content.length), sha256: sha256(content), volume: { sizeBytes: BigInt(16 * MiB) } });
      expect(await rawSha(ref(`back-from-${from}`, to))).toBe(sha256(sparseContent()));
    }
  });

  it("take an image qemu-img made, its virtual size becoming the volume's", async () => {
    const content = Buffer.concat([sparseContent(), Buffer.alloc(8 * MiB, 0x5a)]);
    await volumes.createVolume({ pool: "default", vid: "made", sizeBytes: BigInt(MiB) });
    await volumes.importVolume(imageStream(ref("made"), imageOf("made", content)));
    expect((await volumes.getVolume({ volume: ref("made") })).volume?.sizeBytes).toBe(BigInt(24 * MiB));
    expect(await rawSha(ref("made"))).toBe(sha256(content));
  });

  it("refuse an image with a backing file, an external data file or encryption, a damaged one and what is no image, leaving the volume as it was", async () => {
    const before = await rawSha(ref("disk"));
    const beforeImage = await rawSha(ref("disk", "images"));
    const invalid = { code: grpc.status.INVALID_ARGUMENT, reason: "IMAGE_INVALID", field: "header.format" };

    const backed = path.join(elsewhere, "backed.qcow2");
    qemuImg("create", "-q", "-f", "qcow2", "-b", "/etc/passwd", "-F", "raw", backed, String(16 * MiB));
    expect(await refusal("disk", fs.readFileSync(backed))).toEqual(invalid);

    const external = path.join(elsewhere, "external.qcow2");
    qemuImg("create", "-q", "-f", "qcow2", "-o", `data_file=${path.join(elsewhere, "external.data")}`, external, String(16 * MiB));
    expect(await refusal("disk", fs.readFileSync(external))).toEqual(invalid);

    const encrypted = path.join(elsewhere, "encrypted.qcow2");
    qemuImgTimingPBKDF("create", "-q", "--object", "secret,id=sec0,data=steward", "-f", "qcow2", "-o", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10", encrypted, String(16 * MiB));
    expect(await refusal("disk", fs.readFileSync(encrypted))).toEqual(invalid);

    // Its refcount table emptied: every cluster it uses is counted as free.
    const damaged = imageOf("damaged", sparseContent());
    const refcountTable = Number(damaged.readBigUInt64BE(48));
    damaged.fill(0, refcountTable, refcountTable + 8);
    expect(await refusal("disk", damaged)).toEqual(invalid);
    expect((await rpcError(volumes.importVolume(imageStream(ref("disk"), damaged)))).message).toContain("qemu-img check finds it damaged");

    expect(await refusal("disk", sparseContent().subarray(0, MiB))).toEqual(invalid);
    // A qcow2 pool, which keeps images itself, takes none that leads elsewhere either.
    expect(await refusal("disk", fs.readFileSync(backed), "images")).toEqual(invalid);
    expect(await refusal("disk", damaged, "images")).toEqual(invalid);

    expect(await rawSha(ref("disk"))).toBe(before);
    expect(await rawSha(ref("disk", "images"))).toBe(beforeImage);
    expect(fs.readdirSync(path.join(server.dataDir, "pools", "default", "tmp~"))).toEqual([]);
    expect(fs.readdirSync(path.join(elsewhere, "images", "tmp~"))).toEqual([]);
  });

  it("keep an image's virtual size within the volume's limit, and want the image's length", async () => {
    await volumes.createVolume({ pool: "default", vid: "small", sizeBytes: BigInt(MiB) });
    await volumes.setVolumeLimit({ volume: ref("small"), limitBytes: BigInt(8 * MiB) });
    const over = await rpcError(volumes.importVolume(imageStream(ref("small"), imageOf("big", sparseContent()))));
    expect({ code: over.code, reason: over.info?.reason }).toEqual({ code: grpc.status.RESOURCE_EXHAUSTED, reason: "VOLUME_LIMIT_EXCEEDED" });
    expect((await volumes.getVolume({ volume: ref("small") })).volume?.sizeBytes).toBe(BigInt(MiB));
    const noLength = await rpcError(volumes.importVolume([{ kind: { case: "header", value: { target: { case: "volume", value: ref("small") }, format: VolumeFormat.QCOW2 } } }]));
    expect({ code: noLength.code, field: noLength.info?.fieldViolations[0]?.field }).toEqual({ code: grpc.status.INVALID_ARGUMENT, field: "header.size_bytes" });
  });
});
