import { create, type DescMessage, type DescMethod, type DescService } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { randomUUID } from "node:crypto";
import { once, type EventEmitter } from "node:events";
import type { Logger } from "pino";
import { InvalidFieldError } from "../core/errors";
import { callerOf } from "./caller-identity";
import { toRpcStatus } from "./error-status";
import { MalformedMessage, methodPath } from "./grpc-definitions";
import type { RpcContext } from "./rpc-context";
import type { ServiceImpl } from "./service-impl";

/**
 * Binds typed handlers to grpc-js: builds each call's context (request id, caller, abort
 * signal), turns malformed requests into INVALID_ARGUMENT, failures into statuses (one place:
 * error-status.ts), respects flow control on streams, and logs one line per RPC.
 */

export const REQUEST_ID_KEY = "x-request-id";
const REQUEST_ID_PATTERN = /^[\x21-\x7e]{1,128}$/;

export interface BindingOptions {
  log: Logger;
  /** Aborted when the server starts stopping: every call's `draining` follows it. */
  draining: AbortSignal;
  /** Aborted when the grace period is over: every call's `signal` follows it. */
  stopped: AbortSignal;
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
  const call = (request: unknown, ctx: RpcContext) => (handler as (r: unknown, c: RpcContext) => unknown)(request, ctx);
  switch (method.methodKind) {
    case "unary":
      return (serverCall: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const scope = openCall(serverCall, method, options);
        invoke(async () => create(method.output, (await call(wellFormed(serverCall.request), scope.ctx)) as never)).then(
          (response) => {
            callback(null, response);
            scope.finish(grpc.status.OK);
          },
          (error) => callback(scope.fail(error)),
        );
      };
    case "server_streaming":
      return (serverCall: grpc.ServerWritableStream<unknown, unknown>) => {
        const scope = openCall(serverCall, method, options);
        invoke(() => writeAll(serverCall, method.output, call(wellFormed(serverCall.request), scope.ctx), scope.ctx.signal)).then(
          () => scope.endStream(serverCall),
          (error) => serverCall.emit("error", scope.fail(error)),
        );
      };
    case "client_streaming":
      return (serverCall: grpc.ServerReadableStream<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const scope = openCall(serverCall, method, options);
        invoke(async () => create(method.output, (await call(readAll(serverCall), scope.ctx)) as never)).then(
          (response) => {
            callback(null, response);
            scope.finish(grpc.status.OK);
          },
          (error) => callback(scope.fail(error)),
        );
      };
    case "bidi_streaming":
      return (serverCall: grpc.ServerDuplexStream<unknown, unknown>) => {
        const scope = openCall(serverCall, method, options);
        invoke(() => writeAll(serverCall, method.output, call(readAll(serverCall), scope.ctx), scope.ctx.signal)).then(
          () => scope.endStream(serverCall),
          (error) => serverCall.emit("error", scope.fail(error)),
        );
      };
  }
}

interface CallScope {
  ctx: RpcContext;
  finish(code: grpc.status, error?: unknown): void;
  /** The status to answer for a failure; logs the call. */
  fail(error: unknown): grpc.StatusObject;
  /** Ends a response stream with OK, or logs CANCELLED when the client left. */
  endStream(call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>): void;
}

function openCall(serverCall: AnyCall, method: DescMethod, options: BindingOptions): CallScope {
  const started = process.hrtime.bigint();
  const name = methodPath(method).slice(1);
  const requestId = requestIdOf(serverCall.metadata);
  const headers = new grpc.Metadata();
  headers.set(REQUEST_ID_KEY, requestId);
  serverCall.sendMetadata(headers);

  const cancelled = new AbortController();
  serverCall.on("cancelled", () => cancelled.abort(new Error("the client cancelled the call")));
  const signal = AbortSignal.any([cancelled.signal, options.stopped]);
  const deadline = serverCall.getDeadline();
  const peer = serverCall.getPeer();
  const caller = callerOf(serverCall);
  let callLog: Logger | undefined;
  const ctx: RpcContext = {
    method: name,
    requestId,
    peer,
    caller,
    signal,
    draining: options.draining,
    deadline: deadline instanceof Date ? deadline : Number.isFinite(deadline) ? new Date(deadline) : undefined,
    get log() {
      return (callLog ??= options.log.child({ method: name, requestId }));
    },
  };

  let finished = false;
  const finish = (code: grpc.status, error?: unknown) => {
    if (finished) return;
    finished = true;
    const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
    const line = { method: name, code: grpc.status[code], durationMs, peer, requestId, caller };
    if (error) options.log.error({ ...line, err: error }, "rpc failed unexpectedly");
    else options.log.info(line, "rpc");
  };
  return {
    ctx,
    finish,
    fail(error) {
      const status = cancelled.signal.aborted ? cancelledStatus() : toRpcStatus(error, requestId);
      finish(status.code, status.unexpected ? error : undefined);
      return { code: status.code, details: status.details, metadata: status.metadata };
    },
    endStream(call) {
      if (cancelled.signal.aborted) {
        finish(grpc.status.CANCELLED);
        return;
      }
      call.end();
      finish(grpc.status.OK);
    },
  };
}

function cancelledStatus() {
  return { code: grpc.status.CANCELLED, details: "cancelled by the client", metadata: new grpc.Metadata(), unexpected: false };
}

function requestIdOf(metadata: grpc.Metadata): string {
  const given = metadata.get(REQUEST_ID_KEY)[0];
  return typeof given === "string" && REQUEST_ID_PATTERN.test(given) ? given : randomUUID();
}

/** Runs a handler so that a synchronous throw becomes a rejection like any other. */
function invoke<T>(run: () => T | Promise<T>): Promise<T> {
  try {
    return Promise.resolve(run());
  } catch (error) {
    return Promise.reject(error);
  }
}

function wellFormed(request: unknown): unknown {
  if (request instanceof MalformedMessage) {
    throw new InvalidFieldError(request.field, `cannot be decoded (${request.cause})`, "MALFORMED_REQUEST");
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
  schema: DescMessage,
  responses: unknown,
  signal: AbortSignal,
): Promise<void> {
  for await (const response of responses as AsyncIterable<unknown>) {
    if (signal.aborted) return;
    if (!call.write(create(schema, response as never))) {
      await once(call, "drain", { signal }).catch(() => undefined);
    }
  }
}
