import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as readline from "node:readline";

const ROOT = path.resolve(__dirname, "../..");

/**
 * Starts `steward serve` with its log going straight to a file, as in production: piping it
 * through the benchmark would charge the client's CPU for the server's logging.
 */
export async function startSteward(dir: string, children: ChildProcess[], flags: string[] = []): Promise<{ address: string; pid: number }> {
  const logFile = path.join(dir, "steward.log");
  const log = fs.openSync(logFile, "w");
  // BENCH_SERVER_NODE_FLAGS="--cpu-prof --cpu-prof-dir=DIR" profiles the server, not the benchmark.
  const nodeFlags = process.env.BENCH_SERVER_NODE_FLAGS?.split(" ").filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...nodeFlags, path.join(ROOT, "dist/src/main.js"), "serve", "--hypervisor", "sim", "--data-dir", path.join(dir, "data"), "--listen", "127.0.0.1:0", ...flags], {
    stdio: ["ignore", log, "inherit"],
  });
  children.push(child);
  fs.closeSync(log);
  for (let waited = 0; waited < 15_000; waited += 50) {
    if (child.exitCode !== null) throw new Error(`steward exited with ${child.exitCode}`);
    const listening = fs
      .readFileSync(logFile, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { msg?: string; addresses?: string[] })
      .find((line) => line.msg === "listening");
    if (listening) return { address: listening.addresses![0], pid: child.pid! };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error("steward did not start listening within 15 s");
}

/** A bare grpc-js server answering `path` with these bytes; see bare-server.ts. */
export function startBare(response: Buffer, children: ChildProcess[], flags: string[]): Promise<string> {
  return startScript("bare-server.js", [response.toString("base64"), ...flags], children);
}

/** A bare grpc-js server of ImportVolume's and ExportVolume's paths; see bare-stream-server.ts. */
export function startBareStreams(children: ChildProcess[]): Promise<string> {
  return startScript("bare-stream-server.js", [], children);
}

/** Starts one of the bench's servers, which prints its port on its first line: its address. */
async function startScript(script: string, args: string[], children: ChildProcess[]): Promise<string> {
  const child = spawn(process.execPath, [path.join(__dirname, script), ...args], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  const port = await new Promise<string>((resolve) => readline.createInterface({ input: child.stdout }).once("line", resolve));
  return `127.0.0.1:${port}`;
}

export async function stopAll(children: ChildProcess[]): Promise<void> {
  for (const child of children) child.kill("SIGTERM");
  await Promise.all(children.map((c) => new Promise((resolve) => (c.exitCode !== null ? resolve(null) : c.once("exit", resolve)))));
}

/** The resident memory of a process, in MiB. */
export function rssMib(pid: number): number {
  const line = fs.readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"))!;
  return Number(line.replace(/\D+/g, "")) / 1024;
}
