import * as grpc from "@grpc/grpc-js";
import { BaseServerInterceptingCall } from "@grpc/grpc-js/build/src/server-interceptors";
import { DomainError } from "../core/errors";
import { kindOfCode, STATUS_DETAILS_KEY, toRpcStatus } from "./error-status";
import { SERVER } from "./server-errors";

/**
 * Statuses grpc-js answers by itself — a message over the size limit, either way; a method
 * outside the contract; a deadline passed; a message it cannot decompress, or too many or too
 * few of them — come without the google.rpc.Status details (ErrorInfo) that every Steward
 * error carries, so a client that switches on the reason finds none. Until grpc-js lets a server shape them, the two ways it
 * sends them are wrapped here, once, before the server takes calls: a status without details
 * gets them, with a reason saying what happened. A test fails if a grpc-js upgrade stops
 * calling what this wraps.
 */

interface GrpcJsStatus {
  code: grpc.status;
  details: string;
  metadata?: grpc.Metadata | null;
}

let installed = false;

export function detailGrpcJsStatuses(): void {
  if (installed) return;
  installed = true;
  const call = BaseServerInterceptingCall.prototype as unknown as { sendStatus: (this: unknown, status: GrpcJsStatus) => void };
  const sendStatus = call.sendStatus;
  call.sendStatus = function (this: unknown, status: GrpcJsStatus) {
    sendStatus.call(this, withDetails(status));
  };
  const server = grpc.Server.prototype as unknown as { _respondWithError: (this: unknown, status: GrpcJsStatus, ...rest: unknown[]) => void };
  const respondWithError = server._respondWithError;
  server._respondWithError = function (this: unknown, status: GrpcJsStatus, ...rest: unknown[]) {
    respondWithError.call(this, withDetails(status), ...rest);
  };
}

/** The status as it was when it has details (Steward's own) or is OK; else with details added. */
export function withDetails(status: GrpcJsStatus): GrpcJsStatus {
  if (status.code === grpc.status.OK || (status.metadata?.get(STATUS_DETAILS_KEY).length ?? 0) > 0) return status;
  const { code, reason, metadata } = readingOf(status);
  const kind = kindOfCode(code) ?? "unavailable";
  const detailed = toRpcStatus(new DomainError(kind, reason, status.details, metadata), "");
  const trailers = status.metadata?.clone() ?? new grpc.Metadata();
  trailers.merge(detailed.metadata);
  // Its message is cut as Steward's own are (an unknown method's path may be kilobytes long).
  return { ...status, code, details: detailed.details, metadata: trailers };
}

interface Reading {
  code: grpc.status;
  reason: typeof SERVER.MESSAGE_TOO_LARGE;
  metadata: Record<string, string>;
}

/**
 * What a status of grpc-js's tells, from its message. The code stays grpc-js's but where it
 * blames the server for a client's bytes: a message it cannot decompress or decode, or a
 * unary or server-streaming call with no request message or two, is INTERNAL or UNIMPLEMENTED
 * there, and INVALID_ARGUMENT here (MALFORMED_REQUEST), as a request Steward cannot decode is.
 */
function readingOf({ code, details }: GrpcJsStatus): Reading {
  const reading = (reason: Reading["reason"], metadata: Record<string, string> = {}, as = code): Reading => ({ code: as, reason, metadata });
  if (code === grpc.status.RESOURCE_EXHAUSTED && /larger than/i.test(details)) {
    // "Received message larger than max (5012 vs. 4096)", "Sent message larger than max (…)".
    const limit = /\((\d+) vs\.? (\d+)\)/.exec(details)?.[2] ?? /larger than (\d+)/.exec(details)?.[1];
    return reading(SERVER.MESSAGE_TOO_LARGE, limit ? { limit } : {});
  }
  if (/^Failed to decompress|^Error deserializing request|^Received (a second|no) request message/.test(details)) {
    return reading(SERVER.MALFORMED_REQUEST, {}, grpc.status.INVALID_ARGUMENT);
  }
  const encoding = /unsupported encoding "([^"]*)"/.exec(details)?.[1];
  // UNIMPLEMENTED, as the gRPC protocol has it for a compression the server does not take.
  if (encoding !== undefined) return reading(SERVER.ENCODING_UNSUPPORTED, { encoding });
  if (code === grpc.status.UNIMPLEMENTED) {
    const method = /method (\S+)/.exec(details)?.[1];
    return reading(SERVER.METHOD_UNKNOWN, method ? { method } : {});
  }
  if (code === grpc.status.DEADLINE_EXCEEDED) return reading(SERVER.DEADLINE_EXCEEDED);
  return reading(SERVER.TRANSPORT_FAILURE);
}
