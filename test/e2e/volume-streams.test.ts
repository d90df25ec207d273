import * as grpc from "@grpc/grpc-js";
import * as fs from "node:fs";
import * as path from "node:path";
import { VmClass } from "../../gen/steward/v1/vm_pb";
import { VmService } from "../../gen/steward/v1/vm_service_pb";
import { VolumeService, type ExportVolumeResponse } from "../../gen/steward/v1/volume_service_pb";
import { PoolService } from "../../gen/steward/v1/pool_service_pb";
import { createClient, type StewardClient } from "../../src/client/steward-client";
import { rpcError } from "../fixtures/expect-rpc-error";
import { stopAndReadEvents } from "../fixtures/stored-events";
import { startTestServer, type TestServer } from "../fixtures/test-server";
import { makeTempDir, removeDir } from "../fixtures/temp-dir";
import { collect, importStream, rebuild, sha256, sparseContent, type ImportMessage } from "../fixtures/volume-bytes";

const KiB = 1024;
const MiB = 1024 * KiB;

describe("import and export of volumes", () => {
  let server: TestServer;
  let volumes: StewardClient<typeof VolumeService>;
  let vms: StewardClient<typeof VmService>;
  let pools: StewardClient<typeof PoolService>;
  let elsewhere: string;
  const ref = (vid: string, pool = "default") => ({ pool, vid, vm: "", name: "" });
  const poolFolder = () => path.join(server.dataDir, "pools", "default");

  beforeAll(async () => {
    elsewhere = makeTempDir("steward-streams-");
    server = await startTestServer();
    volumes = createClient(VolumeService, server.tcp);
    vms = createClient(VmService, server.tcp);
    pools = createClient(PoolService, server.tcp);
    await pools.addPool({ name: "images", driver: "qcow2", parameters: { dir_path: path.join(elsewhere, "images") } });
  });

  afterAll(async () => {
    volumes?.close();
    vms?.close();
    pools?.close();
    await server?.stop();
    removeDir(elsewhere);
  });

  it("import a raw content atomically, keeping its holes, and answer its SHA-256", async () => {
    const content = sparseContent();
    await volumes.createVolume({ pool: "default", vid: "in", sizeBytes: 8n * BigInt(MiB) });
    // Chunks of an odd size: the last run of data in each ends inside a 64 KiB grain.
    const imported = await volumes.importVolume(importStream(ref("in"), content, { sha256: sha256(content), chunk: 100 * KiB + 512 }));
    expect(imported).toMatchObject({ bytesReceived: BigInt(content.length), sha256: sha256(content), volume: { sizeBytes: BigInt(content.length) } });
    const file = path.join(poolFolder(), "in.img");
    expect(sha256(fs.readFileSync(file))).toBe(sha256(content));
    // The chunks of zeroes were not written: the file holds little more than the data.
    expect(fs.statSync(file).blocks * 512).toBeLessThan(3 * MiB);
    expect(fs.readdirSync(path.join(poolFolder(), "tmp~"))).toEqual([]);
  });

  it("export only the data, in chunks of at most the size asked, then the SHA-256 of the whole; it round-trips through an import", async () => {
    for (const pool of ["default", "images"]) {
      const content = sparseContent();
      await volumes.createVolume({ pool, vid: "round", sizeBytes: BigInt(content.length) });
      await volumes.importVolume(importStream(ref("round", pool), content));
      const messages = await collect(volumes.exportVolume({ volume: ref("round", pool), chunkSize: 256 * KiB }));
      expect(messages[0].kind).toMatchObject({ case: "header", value: { sizeBytes: BigInt(content.length), volume: { pool, vid: "round" } } });
      for (const message of messages) if (message.kind.case === "chunk") expect(message.kind.value.data.length).toBeLessThanOrEqual(256 * KiB);
      const { content: exported, sent, trailer } = rebuild(messages);
      expect({ pool, same: exported.equals(content) }).toEqual({ pool, same: true });
      expect(trailer.sha256).toBe(sha256(content));
      expect(Number(trailer.bytesSent)).toBe(sent);
      expect(sent).toBeLessThan(2 * MiB);

      await volumes.createVolume({ pool, vid: "again", sizeBytes: BigInt(MiB) });
      await volumes.importVolume(importStream(ref("again", pool), exported, { sha256: trailer.sha256 }));
      const twice = rebuild(await collect(volumes.exportVolume({ volume: ref("again", pool) })));
      expect(twice.trailer.sha256).toBe(trailer.sha256);
      expect(twice.sent).toBeLessThan(3 * MiB);
    }
    expect((await rpcError(collect(volumes.exportVolume({ volume: ref("round"), chunkSize: 2 * MiB })))).info?.fieldViolations[0]?.field).toBe("chunk_size");
  });

  it("export every chunk as it was read while a slow reader leaves many of them waiting to be sent", async () => {
    // Each MiB its own bytes: a chunk sent with the bytes of a later one would show.
    const content = Buffer.alloc(24 * MiB);
    for (let index = 0; index < 24; index++) content.fill(index + 1, index * MiB, (index + 1) * MiB);
    content.write("the end", content.length - 7);
    await volumes.createVolume({ pool: "default", vid: "slow", sizeBytes: BigInt(content.length) });
    await volumes.importVolume(importStream(ref("slow"), content));
    const messages: ExportVolumeResponse[] = [];
    let read = 0;
    for await (const message of volumes.exportVolume({ volume: ref("slow") })) {
      // The server's write queue fills while the first chunks are held here.
      if (read++ < 4) await new Promise((resolve) => setTimeout(resolve, 150));
      messages.push(message);
    }
    const { content: exported, trailer } = rebuild(messages);
    expect(exported.equals(content)).toBe(true);
    expect(trailer.sha256).toBe(sha256(content));
  });

  it("export a revision instead of the current content", async () => {
    await volumes.createVolume({ pool: "default", vid: "rev", sizeBytes: BigInt(MiB) });
    const first = Buffer.alloc(MiB, 7);
    await volumes.importVolume(importStream(ref("rev"), first));
    const { revision } = await volumes.snapshotVolume({ volume: ref("rev") });
    await volumes.importVolume(importStream(ref("rev"), Buffer.alloc(MiB, 9)));
    const { trailer } = rebuild(await collect(volumes.exportVolume({ volume: ref("rev"), revision: revision!.revision })));
    expect(trailer.sha256).toBe(sha256(first));
    expect((await rpcError(collect(volumes.exportVolume({ volume: ref("rev"), revision: "404" })))).info?.reason).toBe("REVISION_NOT_FOUND");
  });

  it("export a qcow2 volume at once after snapshots whose old revisions are still being merged away", async () => {
    const disk = { pool: "images", vid: "merged", vm: "", name: "" };
    // Large enough that a merge takes a while: a reader that does not wait for it meets its lock.
    await volumes.createVolume({ pool: "images", vid: "merged", sizeBytes: BigInt(32 * MiB) });
    const contents = [Buffer.alloc(32 * MiB, 1), Buffer.alloc(32 * MiB, 2), Buffer.alloc(32 * MiB, 3)];
    for (const content of contents) {
      await volumes.importVolume(importStream(disk, content));
      await volumes.snapshotVolume({ volume: disk });
    }
    // revisions_to_keep is 1: each snapshot leaves the one before it to be merged away, after its answer.
    const exported = rebuild(await collect(volumes.exportVolume({ volume: disk })));
    expect(exported.trailer.sha256).toBe(sha256(contents[2]));
    expect((await volumes.listSnapshots({ volume: disk })).revisions).toHaveLength(1);
  });

  it("leave the volume exactly as it was, and no temporary file, when the stream is wrong, short, too long or cancelled", async () => {
    const before = Buffer.alloc(2 * MiB, 3);
    await volumes.createVolume({ pool: "default", vid: "kept", sizeBytes: BigInt(before.length) });
    await volumes.importVolume(importStream(ref("kept"), before));
    const content = sparseContent();

    const wrongSum = await rpcError(volumes.importVolume(importStream(ref("kept"), content, { sha256: "0".repeat(64) })));
    expect({ code: wrongSum.code, reason: wrongSum.info?.reason }).toEqual({ code: grpc.status.DATA_LOSS, reason: "CHECKSUM_MISMATCH" });
    const short = await rpcError(volumes.importVolume(importStream(ref("kept"), content, { sizeBytes: content.length + 512 })));
    expect({ code: short.code, field: short.info?.fieldViolations[0]?.field }).toEqual({ code: grpc.status.INVALID_ARGUMENT, field: "header.size_bytes" });
    const long = await rpcError(volumes.importVolume(importStream(ref("kept"), content, { sizeBytes: content.length - 512 })));
    expect({ code: long.code, field: long.info?.fieldViolations[0]?.field }).toEqual({ code: grpc.status.INVALID_ARGUMENT, field: "chunk" });
    const headless = await rpcError(volumes.importVolume([{ kind: { case: "chunk", value: new Uint8Array(512) } }]));
    expect(headless.info?.fieldViolations[0]?.field).toBe("header");

    const controller = new AbortController();
    async function* cancelledMidway(): AsyncGenerator<ImportMessage> {
      let sent = 0;
      for (const message of importStream(ref("kept"), content)) {
        yield message;
        if (++sent === 4) {
          await new Promise((resolve) => setTimeout(resolve, 100));
          controller.abort();
          await new Promise((resolve) => setTimeout(resolve, 1000));
        }
      }
    }
    expect((await rpcError(volumes.importVolume(cancelledMidway(), { signal: controller.signal }))).code).toBe(grpc.status.CANCELLED);
    // The server sees the cancellation as the stream breaks off; give it a moment to clean up.
    await new Promise((resolve) => setTimeout(resolve, 300));

    expect(sha256(fs.readFileSync(path.join(poolFolder(), "kept.img")))).toBe(sha256(before));
    expect(fs.readdirSync(path.join(poolFolder(), "tmp~"))).toEqual([]);
  });

  it("refuse a VM's volume while the VM runs, and a new TemplateVM without the size of its root, naming the field", async () => {
    await vms.createVm({ name: "busy", klass: VmClass.STANDALONE_VM, label: "red" });
    await vms.startVm({ vm: "busy" });
    const running = await rpcError(volumes.importVolume([{ kind: { case: "header", value: { target: { case: "volume", value: { vm: "busy", name: "private", pool: "", vid: "" } }, sizeBytes: 512n } } }, { kind: { case: "chunk", value: new Uint8Array(512) } }]));
    expect({ code: running.code, reason: running.info?.reason }).toEqual({ code: grpc.status.FAILED_PRECONDITION, reason: "VM_NOT_HALTED" });
    await vms.killVm({ vm: "busy" });
    const template = await rpcError(volumes.importVolume([{ kind: { case: "header", value: { target: { case: "newTemplate", value: { name: "t", klass: VmClass.TEMPLATE_VM } } } } }]));
    expect({ code: template.code, field: template.info?.fieldViolations[0]?.field }).toEqual({ code: grpc.status.INVALID_ARGUMENT, field: "header.size_bytes" });
    expect((await rpcError(vms.getVm({ vm: "t" }))).code).toBe(grpc.status.NOT_FOUND);
  });
});

describe("import events", () => {
  it("tell the beginning and the end of each import, and whether it was swapped in", async () => {
    const server = await startTestServer();
    const volumes = createClient(VolumeService, server.tcp);
    await volumes.createVolume({ pool: "default", vid: "ev", sizeBytes: BigInt(MiB) });
    const target = { pool: "default", vid: "ev" };
    await volumes.importVolume(importStream(target, Buffer.alloc(MiB, 1)));
    await rpcError(volumes.importVolume(importStream(target, Buffer.alloc(MiB, 1), { sha256: "f".repeat(64) })));
    volumes.close();
    const events = (await stopAndReadEvents(server)).filter((event) => event.name.startsWith("volume-import"));
    expect(events.map((event) => [event.name, event.kwargs])).toEqual([
      ["volume-import-begin", { ...target, size_bytes: String(MiB) }],
      ["volume-import-end", { ...target, success: "True", bytes: String(MiB) }],
      ["volume-import-begin", { ...target, size_bytes: String(MiB) }],
      ["volume-import-end", { ...target, success: "False", bytes: String(MiB) }],
    ]);
  });
});
