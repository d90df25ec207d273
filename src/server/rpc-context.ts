import type { Logger } from "pino";
import type { CallContext } from "../core/shared/call-context";

/**
 * What a handler knows of the call it serves, beyond the request itself: the core's call context
 * (who calls, the request id, the signal), and what only the transport knows.
 */
export interface RpcContext extends CallContext {
  /** The full method name, "steward.v1.HostService/GetHostInfo". */
  readonly method: string;
  /** The client's x-request-id, or one made for this call; echoed back in the response headers. */
  readonly requestId: string;
  /** The transport address of the client. */
  readonly peer: string;
  /** Who is calling: the client certificate's subject with mTLS, else the host's own "dom0". */
  readonly caller: string;
  /** Aborted when the client cancels, its deadline passes, or the server's grace period ends. */
  readonly signal: AbortSignal;
  /**
   * Aborted when the server starts stopping. Finite work goes on until `signal`; endless streams
   * (events, stats, health watches) end then with UNAVAILABLE (serverStopping()) so that clients
   * reconnect.
   */
  readonly draining: AbortSignal;
  /** The client's deadline, if it set one. */
  readonly deadline: Date | undefined;
  /** A logger bound to this call (method, request id). */
  readonly log: Logger;
}
