import * as fs from "node:fs";
import pino, { type Logger } from "pino";
import type { LogLevel } from "./config";

/**
 * JSON lines on stdout, one per RPC. Writing a line per RPC must not cost a system call per RPC,
 * so lines are batched: written when BATCH_BYTES are ready, and at least every FLUSH_INTERVAL_MS;
 * flushLogs() writes the rest before the process exits.
 */
export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  // No pid or hostname on every line: one process per host writes this log.
  return pino({ level, base: undefined, timestamp: isoTimeOncePerMillisecond }, destination ?? new BatchedLines(1));
}

let lastMs = NaN;
let lastTime = "";

/**
 * pino's isoTime, formatting the date once per millisecond rather than once per line: lines
 * come in bursts (a batch of RPC lines is logged at once), and formatting was a third of a
 * line's cost.
 */
export function isoTimeOncePerMillisecond(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastTime = `,"time":"${new Date(now).toISOString()}"`;
  }
  return lastTime;
}

export function flushLogs(log: Logger): Promise<void> {
  return new Promise((resolve) => log.flush(() => resolve()));
}

const BATCH_BYTES = 16 * 1024;
const FLUSH_INTERVAL_MS = 250;
const RETRY_MS = 5;
const GIVE_UP_MS = 2000;

/**
 * Collects lines in an array and writes them in one synchronous write. (pino's own buffered
 * destination measures its whole pending buffer on every line, which costs more than the line.)
 */
export class BatchedLines implements pino.DestinationStream {
  private lines: string[] = [];
  private bytes = 0;

  constructor(private readonly fd: number) {
    setInterval(() => this.flushSync(), FLUSH_INTERVAL_MS).unref();
    // Whatever way the process ends, the lines that explain why are written.
    process.once("exit", () => this.flushSync());
  }

  write(line: string): void {
    this.lines.push(line);
    this.bytes += line.length;
    if (this.bytes >= BATCH_BYTES) this.flushSync();
  }

  /** pino's logger.flush() calls this. */
  flush(done?: (error?: Error) => void): void {
    this.flushSync();
    done?.();
  }

  flushSync(): void {
    if (this.lines.length === 0) return;
    const chunk = Buffer.from(this.lines.join(""));
    this.lines = [];
    this.bytes = 0;
    writeFully(this.fd, chunk);
  }
}

/** Writes all of a chunk, waiting out a full pipe (EAGAIN) for a while before dropping it. */
function writeFully(fd: number, chunk: Buffer): void {
  let offset = 0;
  const giveUpAt = Date.now() + GIVE_UP_MS;
  while (offset < chunk.length) {
    try {
      offset += fs.writeSync(fd, chunk, offset);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EAGAIN" || Date.now() > giveUpAt) return;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, RETRY_MS);
    }
  }
}
