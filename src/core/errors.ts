/**
 * Domain errors: what went wrong, in the domain's words. Each carries a stable `reason`
 * (VM_NOT_FOUND, VM_NOT_HALTED…) that clients branch on, and metadata naming the things
 * involved. Only server/ turns them into gRPC statuses; the core never speaks of status codes.
 */

/** The kinds of failure the domain knows; server/error-status.ts maps each to one gRPC code. */
export type ErrorKind =
  | "invalid-argument"
  | "not-found"
  | "already-exists"
  | "failed-precondition"
  | "permission-denied"
  | "resource-exhausted"
  | "out-of-range"
  | "deadline-exceeded"
  | "unavailable"
  | "aborted"
  | "cancelled"
  | "data-loss"
  | "not-implemented";

export class DomainError extends Error {
  constructor(
    readonly kind: ErrorKind,
    readonly reason: string,
    message: string,
    readonly metadata: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = "DomainError";
  }
}

/** A request field is malformed; `field` is its path in the request ("vm", "rules[2].dstports"). */
export class InvalidFieldError extends DomainError {
  constructor(
    readonly field: string,
    description: string,
    reason = "INVALID_FIELD",
  ) {
    super("invalid-argument", reason, `${field}: ${description}`, { field });
    this.name = "InvalidFieldError";
  }
}

export function notFound(reason: string, message: string, metadata: Record<string, string> = {}): DomainError {
  return new DomainError("not-found", reason, message, metadata);
}

export function alreadyExists(reason: string, message: string, metadata: Record<string, string> = {}): DomainError {
  return new DomainError("already-exists", reason, message, metadata);
}

export function failedPrecondition(
  reason: string,
  message: string,
  metadata: Record<string, string> = {},
): DomainError {
  return new DomainError("failed-precondition", reason, message, metadata);
}

/** An RPC of the contract that a later version of Steward implements. */
export function notImplemented(rpc: string): DomainError {
  return new DomainError("not-implemented", "NOT_IMPLEMENTED", `${rpc} is not implemented yet`, { rpc });
}

/** An endless stream ends because the server is stopping; the client should reconnect. */
export function serverStopping(): DomainError {
  return new DomainError("unavailable", "SERVER_STOPPING", "the server is stopping; reconnect");
}
