import { create, type DescMessage, type DescMethod, type DescService } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { randomBytes } from "node:crypto";
import { once, type EventEmitter } from "node:events";
import type { Logger } from "pino";
import { malformedRequest } from "./server-errors";
import type { AccessLog } from "./interceptors/access-log";
import { callerOf, LOCAL_CALLER } from "./caller-identity";
import { toRpcStatus } from "./error-status";
import { MalformedMessage, methodPath } from "./grpc-definitions";
import { REQUEST_ID_KEY, ResponseHeaders } from "./response-headers";
import type { RpcContext } from "./rpc-context";
import type { ServiceImpl } from "./service-impl";

/**
 * Binds typed handlers to grpc-js: builds each call's context (request id, caller, abort
 * signal), turns malformed requests into INVALID_ARGUMENT, failures into statuses (one place:
 * error-status.ts), respects flow control on streams, and logs one line per RPC.
 */

const REQUEST_ID_PATTERN = /^[\x21-\x7e]{1,128}$/;

export interface BindingOptions {
  log: Logger;
  /** Where the line of each RPC goes. */
  accessLog: AccessLog;
  /** Aborted when the server starts stopping: every call's `draining` follows it. */
  draining: AbortSignal;
  /** Aborted when the grace period is over: every call's `signal` follows it. */
  stopped: AbortSignal;
  /** Whether clients present certificates (mTLS); without, every caller is dom0. */
  clientCertificates: boolean;
}

/** What every kind of grpc-js server call offers. */
type AnyCall = Pick<grpc.ServerUnaryCall<unknown, unknown>, "metadata" | "sendMetadata" | "getDeadline" | "getPeer" | "getAuthContext"> & EventEmitter;
type AnyHandler = (request: never, ctx: RpcContext) => unknown;

export function bindService<S extends DescService>(
  service: S,
  impl: ServiceImpl<S>,
  options: BindingOptions,
): grpc.UntypedServiceImplementation {
  const handlers: grpc.UntypedServiceImplementation = {};
  const byName = impl as unknown as Record<string, AnyHandler>;
  for (const method of service.methods) {
    handlers[method.localName] = bindMethod(method, byName[method.localName]!, options);
  }
  return handlers;
}

function bindMethod(method: DescMethod, handler: AnyHandler, options: BindingOptions): grpc.UntypedHandleCall {
  const name = methodPath(method).slice(1);
  const call = handler as (request: unknown, ctx: RpcContext) => unknown;
  switch (method.methodKind) {
    case "unary":
      return (serverCall: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const scope = new CallScope(serverCall, name, options);
        answer(scope, method.output, callback, () => call(wellFormed(serverCall.request), scope));
      };
    case "server_streaming":
      return (serverCall: grpc.ServerWritableStream<unknown, unknown>) => {
        const scope = new CallScope(serverCall, name, options);
        stream(scope, method.output, serverCall, () => call(wellFormed(serverCall.request), scope));
      };
    case "client_streaming":
      return (serverCall: grpc.ServerReadableStream<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const scope = new CallScope(serverCall, name, options);
        answer(scope, method.output, callback, () => call(readAll(serverCall), scope));
      };
    case "bidi_streaming":
      return (serverCall: grpc.ServerDuplexStream<unknown, unknown>) => {
        const scope = new CallScope(serverCall, name, options);
        stream(scope, method.output, serverCall, () => call(readAll(serverCall), scope));
      };
  }
}

/** Runs a handler that answers once, and sends its answer or its failure. */
function answer(scope: CallScope, output: DescMessage, callback: grpc.sendUnaryData<unknown>, run: () => unknown): void {
  invoke(run).then(
    (response) => {
      let message: unknown;
      try {
        message = create(output, response as never);
      } catch (error) {
        callback(scope.fail(error));
        return;
      }
      scope.sendHeaders();
      callback(null, message);
      scope.finish(grpc.status.OK);
    },
    (error) => callback(scope.fail(error)),
  );
}

/** Runs a handler that answers with a stream, and writes it out, then the status. */
function stream(
  scope: CallScope,
  output: DescMessage,
  call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>,
  run: () => unknown,
): void {
  invoke(() => writeAll(call, scope, output, run())).then(
    () => scope.endStream(call),
    (error) => call.emit("error", scope.fail(error)),
  );
}

/**
 * One call: its context for the handler, and the bookkeeping around it. What a handler may not
 * need (the abort signal, a bound logger) is made only when asked for: this runs for every RPC.
 */
class CallScope implements RpcContext {
  readonly method: string;
  readonly requestId: string;
  readonly caller: string;
  readonly draining: AbortSignal;
  private readonly started = performance.now();
  private controller: AbortController | undefined;
  private callLog: Logger | undefined;
  private headersSent = false;
  private finished = false;

  constructor(
    private readonly serverCall: AnyCall,
    method: string,
    private readonly options: BindingOptions,
  ) {
    this.method = method;
    this.requestId = requestIdOf(serverCall.metadata);
    this.caller = options.clientCertificates ? callerOf(serverCall) : LOCAL_CALLER;
    this.draining = options.draining;
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

  /** The response headers, with x-request-id; sent with the first response or the status. */
  sendHeaders(): void {
    if (this.headersSent) return;
    this.headersSent = true;
    this.serverCall.sendMetadata(new ResponseHeaders(this.requestId));
  }

  /** The status to answer for a failure; logs the call. */
  fail(error: unknown): grpc.StatusObject {
    const status = this.isCancelled() ? cancelledStatus() : toRpcStatus(error, this.requestId);
    this.sendHeaders();
    this.finish(status.code, status.unexpected ? error : undefined);
    return { code: status.code, details: status.details, metadata: status.metadata };
  }

  /** Ends a response stream with OK, or logs CANCELLED when the client left. */
  endStream(call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>): void {
    if (this.isCancelled()) {
      this.finish(grpc.status.CANCELLED);
      return;
    }
    this.sendHeaders();
    call.end();
    this.finish(grpc.status.OK);
  }

  finish(code: grpc.status, error?: unknown): void {
    if (this.finished) return;
    this.finished = true;
    this.controller?.abort(new Error("the call ended"));
    const durationMs = Math.round((performance.now() - this.started) * 1000) / 1000;
    const line = { method: this.method, code: grpc.status[code]!, durationMs, peer: this.peer, requestId: this.requestId, caller: this.caller };
    if (error) this.options.log.error({ ...line, err: error }, "rpc failed unexpectedly");
    else this.options.accessLog.record(line);
  }

  private isCancelled(): boolean {
    return (this.serverCall as { cancelled?: boolean }).cancelled === true;
  }
}

function cancelledStatus() {
  return { code: grpc.status.CANCELLED, details: "cancelled by the client", metadata: new grpc.Metadata(), unexpected: false };
}

function requestIdOf(metadata: grpc.Metadata): string {
  const given = metadata.get(REQUEST_ID_KEY)[0];
  return typeof given === "string" && REQUEST_ID_PATTERN.test(given) ? given : nextRequestId();
}

/**
 * Request ids made here: 48 random bits drawn when the process starts, then a counter
 * ("5f0c2a9e7b31-1k4"). Unique within the process, most unlikely to repeat across restarts
 * or hosts, short to send in every response and cheap to make.
 */
const REQUEST_ID_PREFIX = randomBytes(6).toString("hex");
let requestCounter = 0;

function nextRequestId(): string {
  return `${REQUEST_ID_PREFIX}-${(++requestCounter).toString(36)}`;
}

/** Runs a handler so that a synchronous throw becomes a rejection like any other. */
function invoke<T>(run: () => T): Promise<Awaited<T>> {
  try {
    return Promise.resolve(run());
  } catch (error) {
    return Promise.reject(error);
  }
}

function wellFormed(request: unknown): unknown {
  if (request instanceof MalformedMessage) {
    throw malformedRequest(request.field, request.cause);
  }
  return request;
}

async function* readAll(call: grpc.ServerReadableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>) {
  // Not `for await (… of call)`: at the end of the requests that destroys the stream, and with
  // a duplex stream the response side too, before its status is sent.
  for await (const message of call.iterator({ destroyOnReturn: false })) yield wellFormed(message);
}

/** Writes each response as the client's flow control allows; stops when the call is aborted. */
async function writeAll(
  call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>,
  scope: CallScope,
  schema: DescMessage,
  responses: unknown,
): Promise<void> {
  const signal = scope.signal;
  for await (const response of responses as AsyncIterable<unknown>) {
    if (signal.aborted) return;
    scope.sendHeaders();
    if (!call.write(create(schema, response as never))) {
      await once(call, "drain", { signal }).catch(() => undefined);
    }
  }
}
