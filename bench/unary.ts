/**
 * bench/unary: GetHostInfo throughput and p50/p99 latency at 1, 16 and 64 concurrent calls
 * over loopback, against Steward (a real `steward serve`, logging one line per RPC to a
 * file) and against a bare grpc-js server answering a response of the same size from memory,
 * measured in the same run, alternating so that all see the same machine. Target: Steward at
 * least 0.9 of the bare server's throughput.
 *
 * A third server, the bare one sending an x-request-id header as Steward does, shows how much
 * of the difference that header alone makes. The bare servers send the date header Node's http2
 * adds by default; Steward sends none (see server/response-headers.ts).
 *
 * Each round measures the three servers one after the other, starting with a different one each
 * round; a ratio is taken within a round, so that a slower or faster minute of the machine
 * weighs on both sides of it, and the median of the rounds' ratios is reported. On a small
 * shared machine one round's ratio may be off by a tenth: many short rounds (25 of a second)
 * give a steadier median than a few long ones (with 15, a bare server measured against another
 * bare server came out anywhere from 0.96 to 1.03). Three processes of each server take turns, one
 * per round, so that no figure rests on one process alone. (Six identical processes, measured
 * round after round, came out within the noise of each other: what once looked like one process
 * lying worse in memory than another was most likely processes still warming up: see the
 * warm-up in main().)
 *
 *   npm run bench:unary [-- --seconds 1 --rounds 25 --warmup 3]
 */
import { create, toBinary } from "@bufbuild/protobuf";
import type { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { GetHostInfoRequestSchema } from "../gen/steward/v1/host_service_pb";
import { startBare, startSteward, stopAll } from "./child";
import { RawUnaryClient, runLoad, type LoadResult } from "./load";

const PATH = "/steward.v1.HostService/GetHostInfo";
const CONCURRENCY = [1, 16, 64];
const TARGET_RATIO = 0.9;
/** Processes of each server, taking turns round by round. */
const INSTANCES = 3;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { seconds: { type: "string", default: "1" }, rounds: { type: "string", default: "25" }, warmup: { type: "string", default: "3" } },
  });
  const durationMs = Number(values.seconds) * 1000;
  const warmupMs = Number(values.warmup) * 1000;
  const rounds = Number(values.rounds);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "steward-bench-"));
  const request = Buffer.from(toBinary(GetHostInfoRequestSchema, create(GetHostInfoRequestSchema)));
  const children: ChildProcess[] = [];
  try {
    // Several processes of each server, used in turn, so that no figure rests on one process.
    const stewards: RawUnaryClient[] = [];
    for (let i = 0; i < INSTANCES; i++) {
      const instanceDir = path.join(dir, String(i));
      fs.mkdirSync(instanceDir);
      stewards.push(new RawUnaryClient((await startSteward(instanceDir, children)).address, PATH, request));
    }
    const sample = await stewards[0].call();
    const bares: RawUnaryClient[] = [];
    const headers: RawUnaryClient[] = [];
    for (let i = 0; i < INSTANCES; i++) {
      bares.push(new RawUnaryClient(await startBare(sample, children, []), PATH, request));
      headers.push(new RawUnaryClient(await startBare(sample, children, ["--echo-request-id"]), PATH, request));
    }
    const servers = [bares, headers, stewards];
    // V8 goes on optimizing a server's hot code for its first seconds of calls (about 3 s of calls
    // one at a time, for Steward as for the bare server); a round measured before then charges
    // the server with more code to optimize for its warming, not for its steady pace.
    for (const client of servers.flat()) await runLoad(client, 1, warmupMs);

    console.log(
      `GetHostInfo over loopback, response ${sample.length} bytes, ${rounds} rounds of ${durationMs / 1000} s per side, ` +
        `${INSTANCES} processes of each server taking turns, each warmed up for ${warmupMs / 1000} s, ${os.cpus().length} CPUs`,
    );
    console.log("calls/s over all rounds (p50/p99 ms of the median round); ratios: median of the rounds' ratios");
    console.log("concurrency |            bare |  bare+request-id |         steward | steward/bare | steward/bare+request-id");
    let worst = Infinity;
    for (const concurrency of CONCURRENCY) {
      for (const client of servers.flat()) await runLoad(client, concurrency, 300); // warm-up
      const runs: LoadResult[][] = servers.map(() => []);
      for (let round = 0; round < rounds; round++) {
        // Each round starts with a different server, so that none is always measured first,
        // and calls the next process of each.
        for (let k = 0; k < servers.length; k++) {
          const i = (round + k) % servers.length;
          runs[i].push(await runLoad(servers[i][round % INSTANCES], concurrency, durationMs));
        }
      }
      const [b, h, s] = runs.map(combine) as [LoadResult, LoadResult, LoadResult];
      const ratio = medianRatio(runs[2], runs[0]);
      const headerRatio = medianRatio(runs[2], runs[1]);
      worst = Math.min(worst, ratio);
      const cell = (r: LoadResult) => `${r.throughput.toFixed(0)} (${r.p50Ms.toFixed(2)}/${r.p99Ms.toFixed(2)})`.padStart(16);
      console.log(
        `${String(concurrency).padStart(11)} | ${cell(b)} | ${cell(h)} | ${cell(s)} | ${ratio.toFixed(2).padStart(12)} | ${headerRatio.toFixed(2).padStart(23)}`,
      );
    }
    console.log(`lowest steward/bare ${worst.toFixed(2)} (target ≥ ${TARGET_RATIO}): ${worst >= TARGET_RATIO ? "met" : "NOT met"}`);
    for (const client of servers.flat()) client.close();
  } finally {
    await stopAll(children);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The median over rounds of a's throughput divided by b's in the same round. */
function medianRatio(a: LoadResult[], b: LoadResult[]): number {
  const ratios = a.map((run, i) => run.throughput / b[i].throughput).sort((x, y) => x - y);
  const mid = Math.floor(ratios.length / 2);
  return ratios.length % 2 ? ratios[mid] : (ratios[mid - 1] + ratios[mid]) / 2;
}

/** Throughput over all rounds; latency quantiles of the median round. */
function combine(runs: LoadResult[]): LoadResult {
  const calls = runs.reduce((n, r) => n + r.calls, 0);
  const seconds = runs.reduce((n, r) => n + r.seconds, 0);
  const median = [...runs].sort((a, b) => a.throughput - b.throughput)[Math.floor(runs.length / 2)];
  return { calls, seconds, throughput: calls / seconds, p50Ms: median.p50Ms, p99Ms: median.p99Ms };
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
