/**
 * bench/storage: the figures of the storage issue, against a real `steward serve` (simulated
 * hypervisor) whose default pool is on the machine's own disk, in one run:
 *   - ImportVolume and ExportVolume of a 1 GiB volume through gRPC, dense and half holes, next
 *     to cp of the same dense file on the same disk (and a sync of it, as the import ends with
 *     an fsync): target import at least 0.7 of cp's throughput, export of the half-hole volume
 *     faster than cp of the dense one; beside them the ceilings of this machine: grpc-js alone
 *     carrying the bytes to and from a bare server (bare-stream-server.ts), and SHA-256 of 1 GiB
 *     on one core, which every import and export does;
 *   - SnapshotVolume and a start-time snapshot (StartVm of an AppVM, next to StartVm of a
 *     StandaloneVM of the same pool, which snapshots nothing) of a 10 GiB volume in a qcow2 pool
 *     and in a file-reflink pool (btrfs on a loop device, as root): target under 20 ms each,
 *     whatever the size; the drop of the revision past revisions_to_keep, which follows the
 *     answer, is told beside it;
 *   - CreateVm of AppVMs with their volumes, next to making the same files by hand on the same
 *     disk, after a round of warm-up that is not counted: target at least 500 per second;
 *   - the server's RSS while streaming 1 GiB: it must not grow with the volume's size.
 * Each timed figure is the median of paired rounds (baseline, then Steward).
 *
 *   npm run bench:storage [-- --rounds 3] [--only streams|snapshots|creates]
 */
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { execFileSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { PoolService } from "../gen/steward/v1/pool_service_pb";
import { VmClass } from "../gen/steward/v1/vm_pb";
import { VmService } from "../gen/steward/v1/vm_service_pb";
import { ImportVolumeRequestSchema, ImportVolumeResponseSchema, VolumeService } from "../gen/steward/v1/volume_service_pb";
import { createClient, type StewardClient } from "../src/client/steward-client";
import { rssMib, startBareStreams, startSteward, stopAll } from "./child";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const SIZE = GiB;

type Volumes = StewardClient<typeof VolumeService>;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** A chunk of bytes that differ from chunk to chunk, so that nothing along the way can take them for zeroes. */
function denseChunk(index: number): Uint8Array {
  const chunk = new Uint8Array(MiB);
  chunk.fill((index % 250) + 1);
  return chunk;
}

/** The import stream of a 1 GiB content: every MiB dense, or every other one a hole. */
function* importStream(vid: string, halfHoles: boolean): Generator<MessageInitShape<typeof ImportVolumeRequestSchema>> {
  yield { kind: { case: "header", value: { target: { case: "volume", value: { pool: "default", vid, vm: "", name: "" } }, sizeBytes: BigInt(SIZE) } } };
  const zeroes = new Uint8Array(MiB);
  for (let index = 0; index < SIZE / MiB; index++) yield { kind: { case: "chunk", value: halfHoles && index % 2 === 1 ? zeroes : denseChunk(index) } };
}

/** ImportVolumeRequest's chunk field (2, length-delimited), framed around `data`: what any client puts on the wire. */
function chunkMessage(data: Uint8Array): Buffer {
  const prefix = [0x12];
  for (let length = data.length; ; length = Math.floor(length / 128)) {
    if (length < 128) {
      prefix.push(length);
      break;
    }
    prefix.push((length % 128) | 0x80);
  }
  return Buffer.concat([Buffer.from(prefix), data]);
}

/** The 250 distinct dense chunks, framed once: the client's encoding then costs nothing next to the server's work. */
const FRAMED_CHUNKS = Array.from({ length: 250 }, (_, index) => chunkMessage(denseChunk(index)));
const FRAMED_HOLE = chunkMessage(new Uint8Array(MiB));

/**
 * An import of 1 GiB through grpc-js with messages framed in advance: the server's throughput,
 * not the client's cost of encoding 1 GiB of protobuf (which a Go or C++ client barely has).
 */
function leanImport(client: grpc.Client, vid: string, halfHoles: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const call = client.makeClientStreamRequest(
      "/steward.v1.VolumeService/ImportVolume",
      (message: Buffer) => message,
      (bytes: Buffer) => fromBinary(ImportVolumeResponseSchema, bytes),
      (error) => (error ? reject(error) : resolve()),
    );
    const header = create(ImportVolumeRequestSchema, { kind: { case: "header", value: { target: { case: "volume", value: { pool: "default", vid, vm: "", name: "" } }, sizeBytes: BigInt(SIZE) } } });
    const messages = [Buffer.from(toBinary(ImportVolumeRequestSchema, header))];
    let index = 0;
    const pump = () => {
      while (index < SIZE / MiB) {
        const message = halfHoles && index % 2 === 1 ? FRAMED_HOLE : FRAMED_CHUNKS[index % 250];
        index++;
        if (!call.write(message)) return void call.once("drain", pump);
      }
      call.end();
    };
    for (const message of messages) call.write(message);
    pump();
  });
}

/** What the bare server of bare-stream-server.ts sends: `mib` messages of 1 MiB, counted and dropped. */
function bareExport(client: grpc.Client, mib: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const call = client.makeServerStreamRequest("/steward.v1.VolumeService/ExportVolume", (message: Buffer) => message, (bytes: Buffer) => bytes, Buffer.from(String(mib)));
    call.on("data", () => undefined);
    call.on("end", resolve);
    call.on("error", reject);
  });
}

/** SHA-256 of 1 GiB on this thread: the hashing every import and export does, alone. */
function hashOneGiB(): void {
  const hash = createHash("sha256");
  const chunk = denseChunk(0);
  for (let index = 0; index < SIZE / MiB; index++) hash.update(chunk);
  hash.digest();
}

async function exportAll(volumes: Volumes, vid: string): Promise<number> {
  let bytes = 0;
  for await (const message of volumes.exportVolume({ volume: { pool: "default", vid, vm: "", name: "" } })) {
    if (message.kind.case === "chunk") bytes += message.kind.value.data.length;
  }
  return bytes;
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

/** The most the server's RSS reached while `work` ran, sampled every 50 ms. */
async function peakRss(pid: number, work: () => Promise<unknown>): Promise<number> {
  let peak = rssMib(pid);
  const sampler = setInterval(() => (peak = Math.max(peak, rssMib(pid))), 50);
  try {
    await work();
  } finally {
    clearInterval(sampler);
  }
  return Math.max(peak, rssMib(pid));
}

async function streams(volumes: Volumes, address: string, pid: number, dir: string, rounds: number, children: ChildProcess[]): Promise<void> {
  const lean = new grpc.Client(address, grpc.credentials.createInsecure(), { "grpc-node.flow_control_window": 16 * MiB });
  const bare = new grpc.Client(await startBareStreams(children), grpc.credentials.createInsecure(), { "grpc-node.flow_control_window": 16 * MiB });
  const dense = path.join(dir, "dense.img");
  const fd = fs.openSync(dense, "w");
  for (let index = 0; index < SIZE / MiB; index++) fs.writeSync(fd, denseChunk(index));
  fs.closeSync(fd);
  await volumes.createVolume({ pool: "default", vid: "dense", sizeBytes: BigInt(SIZE) });
  await volumes.createVolume({ pool: "default", vid: "holes", sizeBytes: BigInt(SIZE) });

  const cp: number[] = [];
  const importDense: number[] = [];
  const importHoles: number[] = [];
  const exportDense: number[] = [];
  const exportHoles: number[] = [];
  const bareImport: number[] = [];
  const bareHalfExport: number[] = [];
  const hashing: number[] = [];
  const rss = { before: rssMib(pid), importing: 0, exporting: 0 };
  for (let round = 0; round < rounds; round++) {
    const copy = path.join(dir, "copy.img");
    cp.push(
      await timed(async () => {
        execFileSync("cp", ["--reflink=never", "--sparse=never", dense, copy]);
        execFileSync("sync", [copy]);
      }),
    );
    fs.rmSync(copy);
    rss.importing = Math.max(rss.importing, await peakRss(pid, async () => importDense.push(await timed(() => leanImport(lean, "dense", false)))));
    importHoles.push(await timed(() => leanImport(lean, "holes", true)));
    rss.exporting = Math.max(rss.exporting, await peakRss(pid, async () => exportDense.push(await timed(() => exportAll(volumes, "dense")))));
    exportHoles.push(await timed(() => exportAll(volumes, "holes")));
    bareImport.push(await timed(() => leanImport(bare, "dense", false)));
    bareHalfExport.push(await timed(() => bareExport(bare, SIZE / MiB / 2)));
    hashing.push(await timed(async () => hashOneGiB()));
  }
  // The generated client, as a TypeScript user writes it: its protobuf encoding costs the client.
  const generated = await timed(() => volumes.importVolume(importStream("dense", false)));
  lean.close();
  bare.close();
  const mibPerS = (ms: number) => SIZE / MiB / (ms / 1000);
  const cpRate = mibPerS(median(cp));
  const importRate = mibPerS(median(importDense));
  console.log(`cp of 1 GiB dense (and sync): ${median(cp).toFixed(0)} ms, ${cpRate.toFixed(0)} MiB/s (rounds: ${cp.map((ms) => ms.toFixed(0)).join(", ")})`);
  console.log(
    `ImportVolume 1 GiB dense: ${median(importDense).toFixed(0)} ms, ${importRate.toFixed(0)} MiB/s = ${(importRate / cpRate).toFixed(2)} of cp (target >= 0.7): ${importRate / cpRate >= 0.7 ? "met" : "NOT met"}`,
  );
  console.log(`ImportVolume 1 GiB half holes: ${median(importHoles).toFixed(0)} ms`);
  console.log(`ImportVolume 1 GiB dense from the generated TypeScript client (its encoding included), once: ${generated.toFixed(0)} ms, ${mibPerS(generated).toFixed(0)} MiB/s`);
  console.log(`ExportVolume 1 GiB dense: ${median(exportDense).toFixed(0)} ms, ${mibPerS(median(exportDense)).toFixed(0)} MiB/s = ${(mibPerS(median(exportDense)) / cpRate).toFixed(2)} of cp`);
  console.log(
    `ExportVolume 1 GiB half holes: ${median(exportHoles).toFixed(0)} ms = ${(median(exportHoles) / median(cp)).toFixed(2)} of cp's time (target < 1): ${median(exportHoles) < median(cp) ? "met" : "NOT met"}`,
  );
  const bareRate = mibPerS(median(bareImport));
  console.log(
    `  the transport's ceiling here: grpc-js alone, 1 GiB to a bare server that drops it: ${median(bareImport).toFixed(0)} ms, ${bareRate.toFixed(0)} MiB/s = ${(bareRate / cpRate).toFixed(2)} of cp; ` +
      `ImportVolume is ${(importRate / bareRate).toFixed(2)} of it`,
  );
  console.log(
    `  grpc-js alone, the 512 MiB of data of the half-hole volume from a bare server: ${median(bareHalfExport).toFixed(0)} ms = ${(median(bareHalfExport) / median(cp)).toFixed(2)} of cp's time`,
  );
  console.log(`  SHA-256 of 1 GiB on one core (an import and an export hash every byte, holes included): ${median(hashing).toFixed(0)} ms = ${(median(hashing) / median(cp)).toFixed(2)} of cp's time`);
  console.log(
    `server RSS: ${rss.before.toFixed(0)} MiB before, at most ${rss.importing.toFixed(0)} MiB importing and ${rss.exporting.toFixed(0)} MiB exporting 1 GiB ` +
      `(target: no growth with the size; +${(Math.max(rss.importing, rss.exporting) - rss.before).toFixed(0)} MiB)`,
  );
}

async function snapshots(address: string, label: string, pool: string, rounds: number): Promise<void> {
  const volumes = createClient(VolumeService, address);
  const vms = createClient(VmService, address);
  try {
    const ref = { pool, vid: `big-${pool}`, vm: "", name: "" };
    await volumes.createVolume({ pool, vid: ref.vid, sizeBytes: BigInt(10 * GiB) });
    await volumes.importVolume(
      (function* () {
        yield { kind: { case: "header" as const, value: { target: { case: "volume" as const, value: ref } } } };
        for (let index = 0; index < 10 * 1024; index++) yield { kind: { case: "chunk" as const, value: index % 512 === 0 ? denseChunk(index) : new Uint8Array(MiB) } };
      })(),
    );
    const snapshot: number[] = [];
    const withPrune: number[] = [];
    for (let round = 0; round < Math.max(rounds, 5); round++) {
      // The revision that falls past revisions_to_keep (1) goes right after the answer; a listing of the revisions waits for it.
      const started = performance.now();
      snapshot.push(await timed(() => volumes.snapshotVolume({ volume: ref })));
      await volumes.listSnapshots({ volume: ref });
      withPrune.push(performance.now() - started);
    }
    console.log(
      `SnapshotVolume of a 10 GiB ${label} volume: median ${median(snapshot).toFixed(1)} ms (target < 20 ms): ${median(snapshot) < 20 ? "met" : "NOT met"}; with the old revision dropped after it: ${median(withPrune).toFixed(1)} ms`,
    );

    await vms.createVm({ name: `tpl-${pool}`, klass: VmClass.TEMPLATE_VM, label: "black", pool });
    await vms.createVm({ name: `app-${pool}`, klass: VmClass.APP_VM, label: "red", template: `tpl-${pool}`, pool });
    // The baseline: a StandaloneVM of the same pool starts as the AppVM does (its volatile made anew), but snapshots nothing.
    await vms.createVm({ name: `solo-${pool}`, klass: VmClass.STANDALONE_VM, label: "red", pool });
    const start: number[] = [];
    const solo: number[] = [];
    // Each halt keeps a revision of the saved volumes and drops the one before it after the halt,
    // in the pool's turn (a qemu-img run for qcow2): each start is timed once the pool is done
    // with those drops (a listing of revisions waits for its volume's).
    const settled = async () => {
      for (const vm of [`solo-${pool}`, `app-${pool}`]) {
        for (const name of ["root", "private"]) await volumes.listSnapshots({ volume: { vm, name, pool: "", vid: "" } }).catch(() => undefined);
      }
    };
    for (let round = 0; round < Math.max(rounds, 5); round++) {
      await settled();
      solo.push(await timed(() => vms.startVm({ vm: `solo-${pool}` })));
      await vms.killVm({ vm: `solo-${pool}` });
      await settled();
      start.push(await timed(() => vms.startVm({ vm: `app-${pool}` })));
      await vms.killVm({ vm: `app-${pool}` });
    }
    const snapshotShare = median(start) - median(solo);
    console.log(
      `StartVm of an AppVM whose 10 GiB root is snapshotted from its template's, ${label}: median ${median(start).toFixed(1)} ms, next to ${median(solo).toFixed(1)} ms for a StandaloneVM of the pool: the start-time snapshot takes ${snapshotShare.toFixed(1)} ms (target < 20 ms): ${snapshotShare < 20 ? "met" : "NOT met"}`,
    );
  } finally {
    volumes.close();
    vms.close();
  }
}

/** Runs `make(index)` for indexes 0 to count - 1, `width` at a time; the milliseconds it took. */
async function inParallel(count: number, width: number, make: (index: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  return timed(() =>
    Promise.all(
      Array.from({ length: width }, async () => {
        while (next < count) await make(next++);
      }),
    ),
  );
}

/**
 * The files the making of an AppVM writes, made by hand: its folder, and its three sparse
 * volumes, each written beside and linked into place, as a pool makes a volume. What the disk
 * itself costs, whoever makes them.
 */
async function appVmFiles(folder: string, index: number): Promise<void> {
  const vm = path.join(folder, "vms", `vm-${index}`);
  await fs.promises.mkdir(vm);
  for (const volume of ["root", "private", "volatile"]) {
    const temporary = path.join(folder, "tmp", `${index}-${volume}.img`);
    const handle = await fs.promises.open(temporary, "wx", 0o600);
    await handle.truncate(2 * GiB);
    await handle.close();
    await fs.promises.link(temporary, path.join(vm, `${volume}.img`));
    await fs.promises.unlink(temporary);
  }
}

async function creations(address: string, dir: string, rounds: number): Promise<void> {
  const vms = createClient(VmService, address);
  const count = 1000;
  const width = 32;
  try {
    await vms.createVm({ name: "bench-tpl", klass: VmClass.TEMPLATE_VM, label: "black" });
    const byHand: number[] = [];
    const steward: number[] = [];
    // Round 0 warms up, for both, and is not counted: while it runs, V8 compiles CreateVm's path
    // (a profile of it showed a third of the server's other threads' time in the optimizing
    // compiler), which a service that has run for a while has done long ago.
    for (let round = 0; round <= rounds; round++) {
      const folder = path.join(dir, `by-hand-${round}`);
      fs.mkdirSync(path.join(folder, "vms"), { recursive: true });
      fs.mkdirSync(path.join(folder, "tmp"));
      const handRate = count / ((await inParallel(count, width, (index) => appVmFiles(folder, index))) / 1000);
      fs.rmSync(folder, { recursive: true });
      const stewardRate = count / ((await inParallel(count, width, (index) => vms.createVm({ name: `bench-${round}-${index}`, klass: VmClass.APP_VM, label: "red", template: "bench-tpl" }))) / 1000);
      if (round === 0) {
        console.log(`warm-up round, not counted: files by hand ${handRate.toFixed(0)} per second, CreateVm ${stewardRate.toFixed(0)} per second`);
        continue;
      }
      byHand.push(handRate);
      steward.push(stewardRate);
    }
    const rate = median(steward);
    const listed = (rates: number[]) => rates.map((each) => each.toFixed(0)).join(", ");
    console.log(`the files of ${count} AppVMs made by hand on the same disk, ${width} at a time: ${median(byHand).toFixed(0)} per second (rounds: ${listed(byHand)})`);
    console.log(
      `CreateVm of ${count} AppVMs with their volumes, ${width} at a time: ${rate.toFixed(0)} per second (rounds: ${listed(steward)}), ${(rate / median(byHand)).toFixed(2)} of the files' own rate (target >= 500 per second): ${rate >= 500 ? "met" : "NOT met"}`,
    );
  } finally {
    vms.close();
  }
}

/** A btrfs filesystem on a loop device, for the file-reflink pool; undefined when this is not root. */
function btrfsMount(dir: string): { mountPoint: string; remove(): void } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const image = path.join(dir, "btrfs.img");
  const mountPoint = path.join(dir, "btrfs");
  fs.mkdirSync(mountPoint);
  fs.writeFileSync(image, "");
  fs.truncateSync(image, 2 * GiB);
  const device = execFileSync("losetup", ["--find", "--show", image], { encoding: "utf8" }).trim();
  execFileSync("mkfs.btrfs", ["-q", device], { stdio: "ignore" });
  execFileSync("mount", [device, mountPoint]);
  return {
    mountPoint,
    remove() {
      execFileSync("umount", [mountPoint]);
      execFileSync("losetup", ["--detach", device]);
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rounds: { type: "string", default: "3" }, only: { type: "string" } } });
  const rounds = Number(values.rounds);
  /** `--only streams`, `snapshots` or `creates`: one part, to look at it again quickly. */
  const part = (name: string) => values.only === undefined || values.only === name;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "steward-bench-storage-"));
  const children: ChildProcess[] = [];
  const btrfs = btrfsMount(dir);
  try {
    const { address, pid } = await startSteward(dir, children);
    // A window of 16 MiB, as the server's: an export is not held to HTTP/2's 64 KiB a round trip.
    const volumes = createClient(VolumeService, address, undefined, { "grpc-node.flow_control_window": 16 * MiB });
    const pools = createClient(PoolService, address);
    console.log(`default pool: ${(await pools.getPool({ pool: "default" })).pool?.driver} on ${dir}`);
    if (part("streams")) await streams(volumes, address, pid, dir, rounds, children);
    if (part("snapshots")) {
      await pools.addPool({ name: "qcow2", driver: "qcow2", parameters: { dir_path: path.join(dir, "qcow2") } });
      await snapshots(address, "qcow2", "qcow2", rounds);
      if (btrfs) {
        await pools.addPool({ name: "reflink", driver: "file-reflink", parameters: { dir_path: path.join(btrfs.mountPoint, "reflink") } });
        await snapshots(address, "file-reflink", "reflink", rounds);
      } else {
        console.log("file-reflink: skipped, not root (a btrfs on a loop device needs it)");
      }
    }
    if (part("creates")) await creations(address, dir, rounds);
    volumes.close();
    pools.close();
  } finally {
    await stopAll(children);
    btrfs?.remove();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
