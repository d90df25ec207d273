import * as fs from "node:fs";
import * as net from "node:net";
import * as tty from "node:tty";
import pino, { type Logger } from "pino";
import type { LogLevel } from "./config";

/**
 * JSON lines on stdout, one per RPC. Writing a line per RPC must not cost a system call per RPC,
 * so lines are batched: written when BATCH_BYTES are ready, and at least every FLUSH_INTERVAL_MS;
 * flushLogs() writes the rest before the process exits.
 */
export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  // No pid or hostname on every line: one process per host writes this log.
  return pino({ level, base: undefined, timestamp: isoTimeOncePerMillisecond }, destination ?? new BatchedLines(stdoutSink()));
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
/** The most that may wait to be written: past it, lines are dropped (and counted) rather than held. */
export const MAX_PENDING_BYTES = 4 * 1024 * 1024;
/** How long flushLogs() waits for what is pending before it gives up (a reader that never reads). */
const FLUSH_WAIT_MS = 2000;

/** Where batches of log lines go. */
export interface LogSink {
  write(chunk: Buffer): void;
  /** Bytes taken but not written yet. */
  readonly pendingBytes: number;
  /** Calls `listener` once what is pending has been written. */
  onceDrained(listener: () => void): void;
}

/**
 * stdout as the log's sink. A pipe, a socket or a terminal is written without blocking, through
 * a stream of its own: a blocking write to a pipe nobody reads, or to a terminal stopped with
 * Ctrl-S, would stop the server (and a process cannot exit while a write holds one of its
 * threads). A file is written at once.
 */
function stdoutSink(): LogSink {
  if (tty.isatty(1)) return new StreamSink(terminalStream(1));
  const stat = fs.fstatSync(1);
  return stat.isFIFO() || stat.isSocket() ? new StreamSink(new net.Socket({ fd: 1, readable: false, writable: true })) : new FileSink(1);
}

/**
 * A terminal as a stream that never blocks. Node writes terminals synchronously on Linux (its
 * tty.WriteStream sets its handle blocking); the handle is set back to non-blocking here, as
 * net.Socket leaves a pipe's: a terminal's writes then queue like a pipe's.
 */
function terminalStream(fd: number): net.Socket {
  const stream = new tty.WriteStream(fd);
  (stream as unknown as { _handle?: { setBlocking?(blocking: boolean): number } })._handle?.setBlocking?.(false);
  return stream;
}

/** A file: written at once, which never blocks for long. */
export class FileSink implements LogSink {
  readonly pendingBytes = 0;

  constructor(private readonly fd: number) {}

  write(chunk: Buffer): void {
    for (let offset = 0; offset < chunk.length; ) {
      try {
        offset += fs.writeSync(this.fd, chunk, offset);
      } catch {
        return; // The log does not take it: the lines are lost, the server goes on.
      }
    }
  }

  onceDrained(listener: () => void): void {
    listener();
  }
}

/** A pipe, socket or terminal, written as its reader takes it, never blocking. */
export class StreamSink implements LogSink {
  constructor(private readonly socket: net.Socket) {
    // A reader that went away ends the log, not the server.
    this.socket.on("error", () => undefined);
    this.socket.unref();
  }

  get pendingBytes(): number {
    return this.socket.writableLength;
  }

  write(chunk: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(chunk);
  }

  onceDrained(listener: () => void): void {
    if (this.socket.writableLength === 0 || this.socket.destroyed) listener();
    else this.socket.once("drain", listener);
  }
}

/**
 * Collects lines and hands them to the sink in batches: a batch costs one write, not a line.
 * When the sink's reader does not keep up (or never reads), at most MAX_PENDING_BYTES wait; the
 * lines beyond are dropped and counted, and the count is logged once writing catches up, so that
 * logging never stops a call. (pino's own buffered destination measures its whole pending buffer
 * on every line, which costs more than the line.)
 */
export class BatchedLines implements pino.DestinationStream {
  private lines: string[] = [];
  private bytes = 0;
  private dropped = 0;
  private waitingForDrain = false;

  constructor(
    private readonly sink: LogSink,
    private readonly maxPendingBytes = MAX_PENDING_BYTES,
  ) {
    setInterval(() => this.takeBatch(), FLUSH_INTERVAL_MS).unref();
    // Whatever way the process ends, the lines that explain why go to the sink.
    process.once("exit", () => this.takeBatch());
  }

  write(line: string): void {
    this.lines.push(line);
    this.bytes += line.length;
    if (this.bytes >= BATCH_BYTES) this.takeBatch();
  }

  /** pino's logger.flush() calls this: `done` once everything is written, or FLUSH_WAIT_MS passed. */
  flush(done?: (error?: Error) => void): void {
    this.takeBatch();
    if (!done) return;
    let called = false;
    const finish = () => {
      if (called) return;
      called = true;
      clearTimeout(timer);
      done();
    };
    const timer = setTimeout(finish, FLUSH_WAIT_MS);
    this.sink.onceDrained(finish);
  }

  private takeBatch(): void {
    if (this.lines.length === 0) return;
    const count = this.lines.length;
    if (this.sink.pendingBytes + this.bytes > this.maxPendingBytes) {
      this.dropped += count;
      this.lines = [];
      this.bytes = 0;
      this.tellDroppedOnceDrained();
      return;
    }
    const chunk = Buffer.from(this.lines.join(""));
    this.lines = [];
    this.bytes = 0;
    this.sink.write(chunk);
  }

  /** Once the backlog is written, says how many lines it had to drop. */
  private tellDroppedOnceDrained(): void {
    if (this.waitingForDrain) return;
    this.waitingForDrain = true;
    this.sink.onceDrained(() => {
      this.waitingForDrain = false;
      const line = JSON.stringify({ level: 40, time: new Date().toISOString(), dropped: this.dropped, msg: "log lines were dropped: the log's reader did not keep up" });
      this.dropped = 0;
      this.sink.write(Buffer.from(`${line}\n`));
    });
  }
}
