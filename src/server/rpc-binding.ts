import { create, type DescMessage, type DescMethod, type DescService } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { once, type EventEmitter } from "node:events";
import type { Logger } from "pino";
import { callerOf, LOCAL_CALLER } from "./caller-identity";
import { toRpcStatus } from "./error-status";
import { MalformedMessage, methodPath } from "./grpc-definitions";
import { targetOf, type CallTarget } from "./interceptors/call-target";
import { intercepted, settled, type InterceptedContext, type Interceptor, type RpcCall, type RpcHandler, type RpcOutcome } from "./interceptors/interceptor";
import { requestTaker } from "./call-gate";
import { ResponseHeaders } from "./response-headers";
import type { RpcContext } from "./rpc-context";
import { malformedRequest } from "./server-errors";
import type { ServiceImpl } from "./service-impl";

/**
 * Binds typed handlers to grpc-js: builds each call (its context, its target), runs it through
 * the interceptors, turns malformed requests into INVALID_ARGUMENT and failures into statuses
 * (one place: error-status.ts), and respects flow control on streams.
 */

export interface BindingOptions {
  log: Logger;
  /** Around every RPC, the first outermost (the access log, request ids…). */
  interceptors: readonly Interceptor[];
  /** Aborted when the server starts stopping: every call's `draining` follows it. */
  draining: AbortSignal;
  /** Aborted when the grace period is over: every call's `signal` follows it. */
  stopped: AbortSignal;
  /** Whether clients present certificates (mTLS); without, every caller is dom0. */
  clientCertificates: boolean;
  /**
   * Resolves once what the handlers changed is on disk: every answer and every final status
   * waits for it, so that what a client was told happened survives a power loss.
   */
  durable: () => Promise<void>;
}

/** What every kind of grpc-js server call offers. */
type AnyCall = Pick<grpc.ServerUnaryCall<unknown, unknown>, "metadata" | "sendMetadata" | "getDeadline" | "getPeer" | "getAuthContext"> & EventEmitter;
type AnyHandler = (request: never, ctx: RpcContext) => unknown;
type StreamCall = grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>;

export function bindService<S extends DescService>(
  service: S,
  impl: ServiceImpl<S>,
  options: BindingOptions,
): grpc.UntypedServiceImplementation {
  const handlers: grpc.UntypedServiceImplementation = {};
  const byName = impl as unknown as Record<string, AnyHandler>;
  for (const method of service.methods) {
    handlers[method.localName] = bindMethod(method, byName[method.localName], options);
  }
  return handlers;
}

/**
 * One grpc-js handler per method: the interceptors are put around the method's dispatch once,
 * here, not for every call.
 */
function bindMethod(method: DescMethod, handler: AnyHandler, options: BindingOptions): grpc.UntypedHandleCall {
  const path = methodPath(method).slice(1);
  const call = handler as (request: unknown, ctx: RpcContext) => unknown;
  const serve = (dispatch: (scope: CallScope) => Promise<RpcOutcome>) => intercepted(options.interceptors, dispatch as RpcHandler);
  switch (method.methodKind) {
    case "unary": {
      const run = serve((scope) => answer(scope, method.output, () => call(wellFormed(scope.request), scope)));
      return (serverCall: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        void settled(run, new CallScope(serverCall, method, path, serverCall.request, options, callback));
      };
    }
    case "server_streaming": {
      const run = serve((scope) => stream(scope, method.output, scope.serverCall as StreamCall, () => call(wellFormed(scope.request), scope)));
      return (serverCall: grpc.ServerWritableStream<unknown, unknown>) => {
        void settled(run, new CallScope(serverCall, method, path, serverCall.request, options, (status) => serverCall.emit("error", status)));
      };
    }
    case "client_streaming": {
      const run = serve((scope) => answer(scope, method.output, () => call((scope.request as RequestStream).all(), scope)));
      return (serverCall: grpc.ServerReadableStream<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        void settled(run, new CallScope(serverCall, method, path, new RequestStream(readAll(serverCall)), options, callback));
      };
    }
    case "bidi_streaming": {
      const run = serve((scope) => stream(scope, method.output, scope.serverCall as StreamCall, () => call((scope.request as RequestStream).all(), scope)));
      return (serverCall: grpc.ServerDuplexStream<unknown, unknown>) => {
        void settled(run, new CallScope(serverCall, method, path, new RequestStream(readAll(serverCall)), options, (status) => serverCall.emit("error", status)));
      };
    }
  }
}

/** Runs a handler that answers once, and sends its answer or its failure. */
function answer(scope: CallScope, output: DescMessage, run: () => unknown): Promise<RpcOutcome> {
  return afterDurable(scope, invoke(run)).then(
    (response) => {
      let message: unknown;
      try {
        message = create(output, response as never);
      } catch (error) {
        return scope.fail(error);
      }
      scope.sendHeaders();
      scope.succeed(message);
      return scope.ended(grpc.status.OK);
    },
    (error: unknown) => scope.fail(error),
  );
}

/** Runs a handler that answers with a stream, and writes it out, then the status. */
function stream(scope: CallScope, output: DescMessage, call: StreamCall, run: () => unknown): Promise<RpcOutcome> {
  return afterDurable(scope, invoke(() => writeAll(call, scope, output, run()))).then(
    () => scope.endStream(call),
    (error: unknown) => scope.fail(error),
  );
}

/**
 * The handler's outcome, once what it changed is on disk: a failure too may follow changes
 * (an operation's record, a step done before the one that failed). A disk that refuses the
 * sync fails the call.
 */
async function afterDurable<T>(scope: CallScope, outcome: Promise<T>): Promise<T> {
  let result: T;
  try {
    result = await outcome;
  } catch (error) {
    await scope.durable();
    throw error;
  }
  await scope.durable();
  return result;
}

/** The target of a request that cannot be decoded: it names nothing (and fails as malformed). */
const NOTHING: CallTarget = Object.freeze({ vms: [], pools: [], volumes: [] });

/**
 * One call: its context for the handler, and the bookkeeping around it. What a handler may not
 * need (the abort signal, a bound logger, the call's target) is made only when asked for: this
 * runs for every RPC.
 */
class CallScope implements InterceptedContext, RpcCall {
  readonly metadata: grpc.Metadata;
  readonly startedAt = performance.now();
  requestId = "";
  readonly caller: string;
  readonly draining: AbortSignal;
  private controller: AbortController | undefined;
  private callLog: Logger | undefined;
  private headersSent = false;
  private outcome: RpcOutcome | undefined;

  constructor(
    readonly serverCall: AnyCall,
    readonly descriptor: DescMethod,
    /** "steward.v1.HostService/GetHostInfo". */
    readonly method: string,
    /** The request, or for RPCs whose requests stream in, the stream of them. */
    readonly request: unknown,
    private readonly options: BindingOptions,
    /** Sends a failure's status, or (for a unary answer) the response, the way this kind of call does. */
    private readonly respond: (status: grpc.StatusObject | null, message?: unknown) => void,
  ) {
    this.metadata = serverCall.metadata;
    this.caller = options.clientCertificates ? callerOf(serverCall) : LOCAL_CALLER;
    this.draining = options.draining;
  }

  get context(): InterceptedContext {
    return this;
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      const controller = (this.controller = new AbortController());
      const abort = () => controller.abort(new Error(this.isCancelled() ? "the client cancelled the call" : "the server stopped"));
      if (this.isCancelled() || this.options.stopped.aborted) abort();
      else {
        this.serverCall.once("cancelled", abort);
        this.options.stopped.addEventListener("abort", abort, { once: true });
        controller.signal.addEventListener("abort", () => this.options.stopped.removeEventListener("abort", abort), { once: true });
      }
    }
    return this.controller.signal;
  }

  /** The client's address; read when asked for, as the log line does once the answer is sent. */
  get peer(): string {
    return this.serverCall.getPeer();
  }

  get deadline(): Date | undefined {
    const deadline = this.serverCall.getDeadline();
    return deadline instanceof Date ? deadline : Number.isFinite(deadline) ? new Date(deadline) : undefined;
  }

  get log(): Logger {
    return (this.callLog ??= this.options.log.child({ method: this.method, requestId: this.requestId }));
  }

  async target(): Promise<CallTarget> {
    const request = this.request instanceof RequestStream ? await this.request.first() : this.request;
    return request === undefined || request instanceof MalformedMessage ? NOTHING : targetOf(this.descriptor.input, request);
  }

  /** The response headers, with x-request-id; sent with the first response or the status. */
  sendHeaders(): void {
    if (this.headersSent) return;
    this.headersSent = true;
    this.serverCall.sendMetadata(new ResponseHeaders(this.requestId));
  }

  /** Sends the one answer of a unary or client-streaming call. */
  succeed(message: unknown): void {
    this.respond(null, message);
  }

  /** Sends the status for a failure (CANCELLED when the client left), and ends the call with it. */
  fail(error: unknown): RpcOutcome {
    if (this.outcome) return this.outcome;
    const status = this.isCancelled() ? cancelledStatus() : toRpcStatus(error, this.requestId);
    this.sendHeaders();
    this.respond({ code: status.code, details: status.details, metadata: status.metadata });
    return this.ended(status.code, status.unexpected ? error : undefined);
  }

  /** Ends a response stream with OK, or CANCELLED when the client left. */
  endStream(call: StreamCall): RpcOutcome {
    if (this.isCancelled()) return this.ended(grpc.status.CANCELLED);
    this.sendHeaders();
    call.end();
    return this.ended(grpc.status.OK);
  }

  /** The call is over: what waits on its signal stops. */
  ended(code: grpc.status, unexpected?: unknown): RpcOutcome {
    if (this.outcome) return this.outcome;
    this.controller?.abort(new Error("the call ended"));
    this.outcome = unexpected === undefined ? { code } : { code, unexpected };
    return this.outcome;
  }

  /** Once the store has on disk all it committed. */
  durable(): Promise<void> {
    return this.options.durable();
  }

  private isCancelled(): boolean {
    return (this.serverCall as { cancelled?: boolean }).cancelled === true;
  }
}

function cancelledStatus() {
  return { code: grpc.status.CANCELLED, details: "cancelled by the client", metadata: new grpc.Metadata(), unexpected: false };
}

/** Runs a handler so that a synchronous throw becomes a rejection like any other. */
function invoke<T>(run: () => T): Promise<Awaited<T>> {
  try {
    return Promise.resolve(run());
  } catch (error) {
    // Whatever the handler threw, Error or not: error-status.ts makes a status of either.
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
    return Promise.reject(error);
  }
}

function wellFormed(request: unknown): unknown {
  if (request instanceof MalformedMessage) throw malformedRequest(request.field, request.cause);
  return request;
}

/**
 * The requests of a streaming call, whose first one an interceptor may read (to know what the
 * call acts on) before the handler reads them all, the first included.
 */
class RequestStream {
  private head: Promise<IteratorResult<unknown>> | undefined;

  constructor(private readonly source: AsyncGenerator<unknown>) {}

  /** The first request; undefined when there is none, or it cannot be decoded. */
  async first(): Promise<unknown> {
    try {
      const head = await (this.head ??= this.source.next());
      return head.done ? undefined : head.value;
    } catch {
      return undefined;
    }
  }

  /** Every request, from the first; what the source threw, the handler gets. */
  async *all(): AsyncGenerator<unknown> {
    const head = await (this.head ??= this.source.next());
    if (head.done) return;
    yield head.value;
    yield* this.source;
  }
}

async function* readAll(call: grpc.ServerReadableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>) {
  // Not `for await (… of call)`: at the end of the requests that destroys the stream, and with
  // a duplex stream the response side too, before its status is sent.
  const taken = requestTaker(call);
  for await (const message of call.iterator({ destroyOnReturn: false })) {
    taken();
    yield wellFormed(message);
  }
}

/** Writes each response as the client's flow control allows; stops when the call is aborted. */
async function writeAll(call: StreamCall, scope: CallScope, schema: DescMessage, responses: unknown): Promise<void> {
  const signal = scope.signal;
  for await (const response of responses as AsyncIterable<unknown>) {
    if (signal.aborted) return;
    scope.sendHeaders();
    if (!call.write(create(schema, response as never))) {
      await once(call, "drain", { signal }).catch(() => undefined);
    }
  }
}
