import type { Logger } from "pino";

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
 * A batch this long is logged at once: a long batch holds every call waiting while it is
 * logged, and under many concurrent calls (bench/unary at 16) that cost more than it saved.
 */
export const MAX_BATCH = 256;

/**
 * One line per RPC, written after the response is on its way: lines are queued and logged
 * together at most BATCH_MS later (or as soon as MAX_BATCH are waiting), so that logging never
 * delays an answer. drain() logs what is queued at once (the server calls it when it stops).
 */
export class AccessLog {
  private pending: AccessLine[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly log: Logger) {}

  record(line: AccessLine): void {
    this.pending.push(line);
    if (this.pending.length === MAX_BATCH) setImmediate(this.drain);
    else this.timer ??= setTimeout(this.drain, BATCH_MS).unref();
  }

  readonly drain = (): void => {
    clearTimeout(this.timer);
    this.timer = undefined;
    const lines = this.pending;
    this.pending = [];
    for (const line of lines) this.log.info(line, "rpc");
  };
}
