import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import { settled, type Interceptor } from "./interceptor";

/** The line logged for each RPC. */
export interface AccessLine {
  method: string;
  code: string;
  durationMs: number;
  peer: string;
  requestId: string;
  caller: string;
}

/**
 * How long a line may wait, so that lines are logged in batches rather than one by one: each
 * batch costs more than its lines (a timer, and code and data that the calls in between pushed
 * out of the CPU's caches). In bench/unary, batches of 10 ms cost one call at a time about a
 * twentieth of its throughput more than batches of 50 ms.
 */
export const BATCH_MS = 50;
/**
 * A batch this long starts being logged at once: under many concurrent calls, lines are not held
 * by the thousand (bench/unary at 16 concurrent calls did worse with batches of 1,000).
 */
export const MAX_BATCH = 256;

/**
 * A batch is logged this many lines at a time, letting the calls that came meanwhile run between
 * slices: logged whole, a batch of a few hundred lines held up whatever call came in while it
 * was logged (about 3% of bench/unary's throughput at one call at a time).
 */
export const SLICE = 24;

/**
 * One line per RPC, written after the response is on its way: lines are queued and logged
 * together at most BATCH_MS later (or as soon as MAX_BATCH are waiting), a slice at a time, so
 * that logging never delays an answer by more than a slice. drain() logs what is queued at once
 * (the server calls it when it stops).
 */
export class AccessLog {
  private pending: AccessLine[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** The lines being logged, a slice at a time, and the next of them to log. */
  private logging: AccessLine[] = [];
  private next = 0;

  constructor(private readonly log: Logger) {}

  record(line: AccessLine): void {
    this.pending.push(line);
    if (this.pending.length === MAX_BATCH) setImmediate(this.startBatch);
    else this.timer ??= setTimeout(this.startBatch, BATCH_MS).unref();
  }

  /** Logs every line queued, now. */
  readonly drain = (): void => {
    this.takePending();
    this.logUpTo(this.logging.length);
  };

  /** Queues the waiting lines after those being logged, and starts logging them if none were. */
  private readonly startBatch = (): void => {
    const idle = this.next === this.logging.length;
    this.takePending();
    if (idle) this.logSlice();
  };

  private readonly logSlice = (): void => {
    this.logUpTo(this.next + SLICE);
    if (this.next < this.logging.length) setImmediate(this.logSlice);
  };

  private takePending(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.next === this.logging.length) {
      this.logging = this.pending;
      this.next = 0;
    } else this.logging.push(...this.pending);
    this.pending = [];
  }

  private logUpTo(end: number): void {
    const stop = Math.min(end, this.logging.length);
    for (; this.next < stop; this.next++) this.log.info(this.logging[this.next], "rpc");
  }
}

/**
 * Logs one line per RPC once it has ended, through `accessLog`: its method, code, duration,
 * peer, request id and caller. A failure Steward did not expect goes to `log` at error level,
 * with its cause, at once.
 */
export function accessLogInterceptor(accessLog: AccessLog, log: Logger): Interceptor {
  return (next) => (call) =>
    settled(next, call).then((outcome) => {
      const { context } = call;
      const durationMs = Math.round((performance.now() - call.startedAt) * 1000) / 1000;
      const line = { method: call.method, code: grpc.status[outcome.code], durationMs, peer: context.peer, requestId: context.requestId, caller: context.caller };
      if (outcome.unexpected !== undefined) log.error({ ...line, err: outcome.unexpected }, "rpc failed unexpectedly");
      else accessLog.record(line);
      return outcome;
    });
}
