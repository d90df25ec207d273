/**
 * What every use case of the core knows of the call it serves: who calls, the request id its
 * log line and events carry, and the signal that says the caller stopped waiting. An RPC's
 * context is one (server/rpc-context.ts extends it); work the core starts on its own (a VM that
 * halts by itself) has its own.
 */
export interface CallContext {
  /** Who is calling: the client certificate's subject with mTLS, else the host's own "dom0". */
  readonly caller: string;
  /** The client's x-request-id, or one made for the call. */
  readonly requestId: string;
  /**
   * Aborted when the caller stops waiting (it cancelled, its deadline passed, the server is
   * stopping). A use case stops waiting then; what it has set going (a shutdown) goes on.
   */
  readonly signal: AbortSignal;
}

/**
 * The same caller and request, for a step that happens once asked even if the caller stops
 * waiting meanwhile (a shutdown waiting for its turn on the VM).
 */
export function uncancellable(ctx: CallContext): CallContext {
  return { caller: ctx.caller, requestId: ctx.requestId, signal: neverAborted() };
}

/** The context of work the core does of its own accord, that no caller waits for. */
export function internalContext(what: string): CallContext {
  return { caller: "dom0", requestId: what, signal: neverAborted() };
}

/**
 * A signal that never aborts; one for each context, as those who wait listen to it, and one
 * signal shared by every such wait would gather their listeners by the hundred.
 */
function neverAborted(): AbortSignal {
  return new AbortController().signal;
}
