import { create, toBinary } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb";
import { StatusSchema, type Status } from "../../gen/google/rpc/status_pb";
import { DomainError, InvalidFieldError, quote, type ErrorKind } from "../core/errors";
import { SERVER } from "./server-errors";

/**
 * The one place where failures become gRPC statuses (containerd's errgrpc). A domain error keeps
 * its message and gets a google.rpc.Status with an ErrorInfo (and a BadRequest for a bad field)
 * in grpc-status-details-bin; anything else is INTERNAL with a generic message, and its cause
 * goes to the log only.
 */

export const ERROR_DOMAIN = "steward.v1";
export const STATUS_DETAILS_KEY = "grpc-status-details-bin";

const CODE_OF_KIND: Record<ErrorKind, grpc.status> = {
  "invalid-argument": grpc.status.INVALID_ARGUMENT,
  "not-found": grpc.status.NOT_FOUND,
  "already-exists": grpc.status.ALREADY_EXISTS,
  "failed-precondition": grpc.status.FAILED_PRECONDITION,
  "permission-denied": grpc.status.PERMISSION_DENIED,
  "resource-exhausted": grpc.status.RESOURCE_EXHAUSTED,
  "out-of-range": grpc.status.OUT_OF_RANGE,
  "deadline-exceeded": grpc.status.DEADLINE_EXCEEDED,
  unavailable: grpc.status.UNAVAILABLE,
  aborted: grpc.status.ABORTED,
  cancelled: grpc.status.CANCELLED,
  "data-loss": grpc.status.DATA_LOSS,
  "not-implemented": grpc.status.UNIMPLEMENTED,
};

const KIND_OF_CODE = new Map<grpc.status, ErrorKind>(Object.entries(CODE_OF_KIND).map(([kind, code]) => [code, kind as ErrorKind]));

/** The kind of error a gRPC code tells; undefined for a code no Steward error has (INTERNAL…). */
export function kindOfCode(code: grpc.status): ErrorKind | undefined {
  return KIND_OF_CODE.get(code);
}

export interface RpcStatus {
  code: grpc.status;
  details: string;
  metadata: grpc.Metadata;
  /** Whether the failure was unexpected: its cause must be logged. */
  unexpected: boolean;
}

/** The status for a failure; `requestId` lets an INTERNAL answer point at its log line. */
export function toRpcStatus(error: unknown, requestId: string): RpcStatus {
  if (error instanceof DomainError) {
    const code = CODE_OF_KIND[error.kind];
    const message = quote(error.message, MAX_MESSAGE_CHARS);
    const violation = error instanceof InvalidFieldError ? { field: quote(error.field, MAX_METADATA_CHARS), description: message } : undefined;
    return {
      code,
      details: message,
      metadata: statusDetails(code, message, error.reason, clippedValues(error.metadata), violation),
      unexpected: false,
    };
  }
  const message = `internal error; the server log has the cause under request id ${requestId}`;
  return {
    code: grpc.status.INTERNAL,
    details: message,
    metadata: statusDetails(grpc.status.INTERNAL, message, SERVER.INTERNAL, { request_id: requestId }),
    unexpected: true,
  };
}

/**
 * However an error came to be, what it sends stays small: its message and each metadata value
 * are cut (with an ellipsis) past these lengths, so that its trailers stay within what any
 * client accepts (grpc-go takes 16 KiB of headers).
 */
const MAX_MESSAGE_CHARS = 512;
const MAX_METADATA_CHARS = 128;

function clippedValues(metadata: Readonly<Record<string, string>>): Record<string, string> {
  const clipped: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata)) clipped[key] = quote(value, MAX_METADATA_CHARS);
  return clipped;
}

function statusDetails(
  code: grpc.status,
  message: string,
  reason: string,
  metadata: Readonly<Record<string, string>>,
  violation?: { field: string; description: string },
): grpc.Metadata {
  const trailers = new grpc.Metadata();
  trailers.set(STATUS_DETAILS_KEY, Buffer.from(toBinary(StatusSchema, statusMessage(code, message, reason, metadata, violation))));
  return trailers;
}

/** A google.rpc.Status with its ErrorInfo (and BadRequest for a bad field). */
function statusMessage(code: grpc.status, message: string, reason: string, metadata: Readonly<Record<string, string>>, violation?: { field: string; description: string }): Status {
  const details = [anyPack(ErrorInfoSchema, create(ErrorInfoSchema, { reason, domain: ERROR_DOMAIN, metadata }))];
  if (violation) details.push(anyPack(BadRequestSchema, create(BadRequestSchema, { fieldViolations: [violation] })));
  return create(StatusSchema, { code, message, details });
}

/**
 * The google.rpc.Status of a failure kept apart from any call (an operation's error), as a call
 * would have ended with it; "internal" is INTERNAL.
 */
export function keptErrorStatus(error: { kind: string; reason: string; message: string; metadata: Readonly<Record<string, string>> }): Status {
  const code = (CODE_OF_KIND as Partial<Record<string, grpc.status>>)[error.kind] ?? grpc.status.INTERNAL;
  const message = quote(error.message, MAX_MESSAGE_CHARS);
  const field = error.kind === "invalid-argument" ? error.metadata.field : undefined;
  const reason = code === grpc.status.INTERNAL ? SERVER.INTERNAL : error.reason;
  return statusMessage(code, message, reason, clippedValues(error.metadata), field ? { field: quote(field, MAX_METADATA_CHARS), description: message } : undefined);
}
