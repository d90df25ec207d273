import * as grpc from "@grpc/grpc-js";
import { BaseServerInterceptingCall } from "@grpc/grpc-js/build/src/server-interceptors";
import { InvalidFieldError, quote } from "../core/errors";
import { toRpcStatus } from "./error-status";

/**
 * How a call's deadline (its grpc-timeout header) is read. grpc-js reads it with `| 0`: a
 * deadline past 24.8 days wraps to a negative or shorter timer (a call with a 25-day deadline
 * ended at once, DEADLINE_EXCEEDED), and a header it cannot read is INTERNAL. Until grpc-js reads
 * it whole, its reading is replaced here, once, before the server takes calls: any deadline the
 * header can say holds (a timer longer than Node's is set again until it is reached), and a
 * malformed header is INVALID_ARGUMENT, with ErrorInfo, naming it. A test fails if a grpc-js
 * upgrade stops calling the method this replaces.
 */

/** What grpc-js's call keeps of a deadline, and how it answers: what the reading below uses. */
interface DeadlineOfCall {
  deadline: number;
  deadlineTimer: NodeJS.Timeout | null;
  sendStatus(status: { code: grpc.status; details: string; metadata: grpc.Metadata | null }): void;
}

/** The header's form: up to 8 digits and a unit (gRPC over HTTP/2, "Timeout"). */
const TIMEOUT = /^(\d{1,8})([HMSmun])$/;
const UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000_001 };
/** The longest timer Node sets, as core/shared/long-timer has it (the server imports no core but errors). */
const MAX_TIMER_MS = 2_147_483_647;
/** How much of a malformed header an error quotes. */
const QUOTED = 40;

let installed = false;

export function readDeadlinesWhole(): void {
  if (installed) return;
  installed = true;
  const prototype = BaseServerInterceptingCall.prototype as unknown as { handleTimeoutHeader: (this: DeadlineOfCall, header: unknown) => void };
  prototype.handleTimeoutHeader = handleTimeoutHeader;
}

function handleTimeoutHeader(this: DeadlineOfCall, header: unknown): void {
  const text = String(header);
  const match = TIMEOUT.exec(text);
  if (!match) {
    const refusal = new InvalidFieldError("grpc-timeout", `"${quote(text, QUOTED)}" is not a timeout: 1 to 8 digits, then H, M, S, m, u or n`);
    const status = toRpcStatus(refusal, "");
    // As grpc-js does: the call is not set up yet; answer once it is.
    process.nextTick(() => this.sendStatus({ code: status.code, details: status.details, metadata: status.metadata }));
    return;
  }
  const timeoutMs = Number(match[1]) * UNIT_MS[match[2]];
  this.deadline = Date.now() + timeoutMs;
  // LongTimer's chaining, on the timer grpc-js clears by itself (deadlineTimer).
  const arm = (remainingMs: number) => {
    this.deadlineTimer = setTimeout(() => {
      if (remainingMs > MAX_TIMER_MS) arm(remainingMs - MAX_TIMER_MS);
      else this.sendStatus({ code: grpc.status.DEADLINE_EXCEEDED, details: "Deadline exceeded", metadata: null });
    }, Math.min(remainingMs, MAX_TIMER_MS));
  };
  arm(timeoutMs);
}
