/**
 * bench/nbd: the figures of the block-export issue, against a real `steward serve` whose
 * default pool is on the machine's own disk, in one run:
 *   - a sequential read of a 1 GiB volume (dense) with nbdcopy through Steward's NBD export
 *     (its qemu-storage-daemon), next to qemu-nbd serving the same file directly, read the same
 *     way: target at least 0.9 of qemu-nbd's throughput;
 *   - the time from AddBlockExport's call to a client's first byte (qemu-io reading the first
 *     4 KiB of the new export, its own start included), next to qemu-nbd's start to the same.
 * Each figure is the median of paired rounds (qemu-nbd first, then Steward), the page cache
 * warm for both (the file was just written).
 *
 *   npm run bench:nbd [-- --rounds 5]
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { BlockExportService } from "../gen/steward/v1/block_export_service_pb";
import { VolumeService } from "../gen/steward/v1/volume_service_pb";
import { createClient } from "../src/client/steward-client";
import { startSteward, stopAll } from "./child";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function timed(work: () => void): number {
  const start = process.hrtime.bigint();
  work();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** Reads the whole export into /dev/null, as a backup reads a volume: nbdcopy, 4 connections by default. */
function readAll(uri: string): number {
  return timed(() => execFileSync("nbdcopy", [uri, "null:"], { stdio: "ignore" }));
}

/** Waits for the first 4 KiB to be read (qemu-io, a client's own start included); the time to it from `since`. */
function firstByte(uri: string, since: bigint): number {
  for (;;) {
    if (Number(process.hrtime.bigint() - since) > 30e9) throw new Error(`${uri} served nothing within 30 s`);
    try {
      execFileSync("qemu-io", ["-r", "-f", "raw", "-c", "read 0 4k", uri], { stdio: "ignore", timeout: 5000 });
      return Number(process.hrtime.bigint() - since) / 1e6;
    } catch {
      // Not serving yet.
    }
  }
}

/** The storage daemon outlives Steward by design; the benchmark's ends with it, found by its pidfile and command line. */
function endDaemon(dataDir: string): void {
  const folder = path.join(dataDir, "exports", "daemon");
  try {
    const pid = Number(fs.readFileSync(path.join(folder, "daemon.pid"), "utf8").trim());
    if (fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(path.join(folder, "qmp.sock"))) process.kill(pid, "SIGTERM");
  } catch {
    // None ran, or it is gone already.
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rounds: { type: "string", default: "5" } } });
  const rounds = Number(values.rounds);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "steward-bench-nbd-"));
  const children: ChildProcess[] = [];
  try {
    const { address } = await startSteward(dir, children);
    const volumes = createClient(VolumeService, address);
    const exports = createClient(BlockExportService, address);
    await volumes.createVolume({ pool: "default", vid: "big", sizeBytes: BigInt(GiB) });
    const file = path.join(dir, "data", "pools", "default", "big.img");
    if (!fs.existsSync(file)) throw new Error(`the volume's file is not at ${file}`);
    // Dense bytes, written by hand: what both servers read is the same file.
    execFileSync("dd", ["if=/dev/urandom", `of=${file}`, "bs=1M", `count=${GiB / MiB}`, "conv=notrunc", "status=none"]);
    await exports.startNbdServer({ address: "unix:bench.sock" });
    const stewardSocket = path.join(dir, "data", "exports", "nbd", "bench.sock");
    const directSocket = path.join(dir, "direct.sock");
    const stewardUri = (name: string) => `nbd+unix:///${name}?socket=${stewardSocket}`;
    const directUri = `nbd+unix:///?socket=${directSocket}`;

    const reads: { direct: number; steward: number }[] = [];
    const starts: { direct: number; steward: number }[] = [];
    for (let round = 0; round < rounds; round++) {
      // qemu-nbd serving the file directly, read-only, as the export does.
      fs.rmSync(directSocket, { force: true });
      const directStart = process.hrtime.bigint();
      const direct = spawn("qemu-nbd", ["--read-only", "--persistent", "--shared=8", "-f", "raw", "--socket", directSocket, file], { stdio: "ignore" });
      const directFirst = firstByte(directUri, directStart);
      const directRead = readAll(directUri);
      direct.kill("SIGTERM");
      await new Promise((resolve) => direct.once("exit", resolve));

      const id = `round${round}`;
      const stewardStart = process.hrtime.bigint();
      await exports.addBlockExport({ id, volume: { pool: "default", vid: "big", vm: "", name: "" } });
      const stewardFirst = firstByte(stewardUri(id), stewardStart);
      const stewardRead = readAll(stewardUri(id));
      await exports.removeBlockExport({ id });
      while ((await exports.listBlockExports({})).exports.length > 0) await new Promise((resolve) => setTimeout(resolve, 10));

      reads.push({ direct: directRead, steward: stewardRead });
      starts.push({ direct: directFirst, steward: stewardFirst });
      console.log(`round ${round + 1}: read qemu-nbd ${directRead.toFixed(0)} ms, Steward ${stewardRead.toFixed(0)} ms; first byte qemu-nbd ${directFirst.toFixed(1)} ms, Steward ${stewardFirst.toFixed(1)} ms`);
    }
    const throughput = (ms: number) => GiB / MiB / (ms / 1000);
    const directMs = median(reads.map((r) => r.direct));
    const stewardMs = median(reads.map((r) => r.steward));
    const ratio = median(reads.map((r) => r.direct / r.steward));
    console.log(`\nsequential read of 1 GiB (median of ${rounds} paired rounds):`);
    console.log(`  qemu-nbd directly     ${directMs.toFixed(0)} ms  ${throughput(directMs).toFixed(0)} MiB/s`);
    console.log(`  Steward's export      ${stewardMs.toFixed(0)} ms  ${throughput(stewardMs).toFixed(0)} MiB/s`);
    console.log(`  ratio Steward/qemu-nbd throughput ${ratio.toFixed(2)} (target >= 0.90)`);
    console.log(`time to a client's first byte:`);
    console.log(`  qemu-nbd start        ${median(starts.map((s) => s.direct)).toFixed(1)} ms`);
    console.log(`  AddBlockExport        ${median(starts.map((s) => s.steward)).toFixed(1)} ms`);
    volumes.close();
    exports.close();
  } finally {
    await stopAll(children);
    endDaemon(path.join(dir, "data"));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
