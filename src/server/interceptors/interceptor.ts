import type { DescMethod } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import type { RpcContext } from "../rpc-context";
import type { CallTarget } from "./call-target";

/**
 * Cross-cutting work around every RPC, in the manner of connect-es' interceptors
 * (`(next) => (call) => …`): the access log, request ids, and (later) authorization and
 * deadlines. The server runs them in the order it lists them, around the handler.
 */

/** The context a handler gets, as interceptors may still set it before the handler runs. */
export interface InterceptedContext extends RpcContext {
  requestId: string;
}

/** One RPC, as interceptors see it. */
export interface RpcCall {
  /** "steward.v1.VmService/GetVm". */
  readonly method: string;
  readonly descriptor: DescMethod;
  /** The request headers. */
  readonly metadata: grpc.Metadata;
  /** When the call came, on performance.now()'s clock. */
  readonly startedAt: number;
  readonly context: InterceptedContext;
  /**
   * What the request acts on (VMs, pools, volumes), read from it by its descriptor. For an RPC
   * whose requests stream in, it is read from the first one (an import's header, a console's
   * vm), which the handler then gets as usual; empty for a request that cannot be decoded.
   */
  target(): Promise<CallTarget>;
  /** Ends the call with the status of `error` (sent to the client), and says how it ended. */
  fail(error: unknown): RpcOutcome;
}

/** How a call ended. */
export interface RpcOutcome {
  code: grpc.status;
  /** The failure, when Steward did not expect it: it is logged with its cause. */
  unexpected?: unknown;
}

/** Serves a call through to its end: resolves once the status is sent. */
export type RpcHandler = (call: RpcCall) => Promise<RpcOutcome>;

export type Interceptor = (next: RpcHandler) => RpcHandler;

/** The handler with the interceptors around it, the first outermost. */
export function intercepted(interceptors: readonly Interceptor[], handler: RpcHandler): RpcHandler {
  return interceptors.reduceRight((next, interceptor) => interceptor(next), handler);
}

/**
 * Runs `next`, and turns anything it throws or rejects with (an interceptor refusing the call)
 * into the call's failure: an interceptor that needs the outcome calls its next through this.
 */
export function settled(next: RpcHandler, call: RpcCall): Promise<RpcOutcome> {
  let outcome: Promise<RpcOutcome>;
  try {
    outcome = next(call);
  } catch (error) {
    return Promise.resolve(call.fail(error));
  }
  return outcome.catch((error: unknown) => call.fail(error));
}
