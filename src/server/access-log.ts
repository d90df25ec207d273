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

/** How long a line may wait, so that lines are logged in batches rather than one by one. */
const BATCH_MS = 10;

/**
 * One line per RPC, written after the response is on its way: lines are queued and logged
 * together at most BATCH_MS later, so that logging never delays an answer and costs one
 * timer per batch, not per call. drain() logs what is queued at once (the server calls it
 * when it stops).
 */
export class AccessLog {
  private pending: AccessLine[] = [];
  private scheduled = false;

  constructor(private readonly log: Logger) {}

  record(line: AccessLine): void {
    this.pending.push(line);
    if (!this.scheduled) {
      this.scheduled = true;
      setTimeout(this.drain, BATCH_MS).unref();
    }
  }

  readonly drain = (): void => {
    this.scheduled = false;
    const lines = this.pending;
    this.pending = [];
    for (const line of lines) this.log.info(line, "rpc");
  };
}
