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
 * One line per RPC, written after the response is on its way: lines are queued and logged
 * together on the next turn of the event loop, so that logging never delays an answer.
 * drain() logs what is queued at once (the server calls it when it stops).
 */
export class AccessLog {
  private pending: AccessLine[] = [];
  private scheduled = false;

  constructor(private readonly log: Logger) {}

  record(line: AccessLine): void {
    this.pending.push(line);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.drain);
    }
  }

  readonly drain = (): void => {
    this.scheduled = false;
    const lines = this.pending;
    this.pending = [];
    for (const line of lines) this.log.info(line, "rpc");
  };
}
