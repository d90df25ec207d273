/**
 * Domain errors: what went wrong, in the domain's words. Each carries a stable `reason`
 * (VM_NOT_FOUND, VM_NOT_HALTED…) that clients branch on, and metadata naming the things
 * involved. Only server/ turns them into gRPC statuses; the core never speaks of status codes.
 *
 * Reasons are part of the contract: each is declared once, in the catalog of its area (a file
 * named `*-errors.ts`, with factories such as `vmIsAdmin(vm, action)`), and a unit test holds
 * the sorted list of all of them, so that a changed reason is a reviewed change. A reason is a
 * branded string that only `declareReasons` makes: a reason written out at a throw site does
 * not compile.
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

declare const reasonBrand: unique symbol;

/** A stable reason, from a catalog. */
export type Reason = string & { readonly [reasonBrand]: true };

/** Every declared reason, and the catalog that declared it. */
const declared = new Map<string, string>();

/**
 * Declares the reasons of one area's catalog. A reason belongs to one catalog: declaring it
 * again elsewhere throws when the module loads, so two areas cannot drift apart on one word.
 */
export function declareReasons<const R extends readonly string[]>(catalog: string, reasons: R): { readonly [K in R[number]]: Reason } {
  const table: Record<string, Reason> = {};
  for (const reason of reasons) {
    if (!/^[A-Z][A-Z0-9_]*$/.test(reason)) throw new Error(`reason ${reason} of ${catalog} is not UPPER_SNAKE_CASE`);
    const owner = declared.get(reason);
    if (owner !== undefined && owner !== catalog) throw new Error(`reason ${reason} of ${catalog} is declared by ${owner} already`);
    declared.set(reason, catalog);
    table[reason] = reason as Reason;
  }
  return Object.freeze(table) as { readonly [K in R[number]]: Reason };
}

/** Every reason declared by the catalogs loaded so far, sorted. */
export function declaredReasons(): { reason: string; catalog: string }[] {
  return [...declared].map(([reason, catalog]) => ({ reason, catalog })).sort((a, b) => a.reason.localeCompare(b.reason));
}

export class DomainError extends Error {
  constructor(
    readonly kind: ErrorKind,
    readonly reason: Reason,
    message: string,
    readonly metadata: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = "DomainError";
  }
}

/** The reasons that belong to no one area: the contract's own. */
export const CONTRACT = declareReasons("contract", ["INVALID_FIELD", "NOT_IMPLEMENTED", "SERVER_STOPPING", "CANCELLED"]);

/** A request field is malformed; `field` is its path in the request ("vm", "rules[2].dstports"). */
export class InvalidFieldError extends DomainError {
  constructor(
    readonly field: string,
    private readonly description: string,
    reason: Reason = CONTRACT.INVALID_FIELD,
    private readonly details: Readonly<Record<string, string>> = {},
  ) {
    super("invalid-argument", reason, `${field}: ${description}`, { ...details, field });
    this.name = "InvalidFieldError";
  }

  /** The same refusal, of the field as a request that holds it under `prefix` names it ("header.new_template."). */
  under(prefix: string): InvalidFieldError {
    return new InvalidFieldError(`${prefix}${this.field}`, this.description, this.reason, this.details);
  }
}

export function notFound(reason: Reason, message: string, metadata: Record<string, string> = {}): DomainError {
  return new DomainError("not-found", reason, message, metadata);
}

export function alreadyExists(reason: Reason, message: string, metadata: Record<string, string> = {}): DomainError {
  return new DomainError("already-exists", reason, message, metadata);
}

export function failedPrecondition(reason: Reason, message: string, metadata: Record<string, string> = {}): DomainError {
  return new DomainError("failed-precondition", reason, message, metadata);
}

/** A request field whose behaviour a later version of Steward implements: set, the call is refused. */
export function fieldNotImplemented(field: string, why: string): DomainError {
  return new DomainError("not-implemented", CONTRACT.NOT_IMPLEMENTED, `${field} is not implemented yet: ${why}`, { field });
}

/** An RPC of the contract that a later version of Steward implements. */
export function notImplemented(rpc: string): DomainError {
  return new DomainError("not-implemented", CONTRACT.NOT_IMPLEMENTED, `${rpc} is not implemented yet`, { rpc });
}

/** An endless stream ends because the server is stopping; the client should reconnect. */
export function serverStopping(): DomainError {
  return new DomainError("unavailable", CONTRACT.SERVER_STOPPING, "the server is stopping; reconnect");
}

/** The caller stopped waiting (it cancelled, or its deadline passed); what it started may go on. */
export function callCancelled(what: string): DomainError {
  return new DomainError("cancelled", CONTRACT.CANCELLED, `the call was cancelled while ${what}`);
}

/** How much of a request's text an error quotes. */
export const QUOTED_CHARS = 64;

/**
 * Request text as an error quotes it: whole when short, else its start and an ellipsis, so that
 * no error grows with what a client sent.
 */
export function quote(text: string, max = QUOTED_CHARS): string {
  if (text.length <= max) return text;
  // Never cut a surrogate pair in two.
  const end = /[\ud800-\udbff]/.test(text[max - 2] ?? "") ? max - 2 : max - 1;
  return `${text.slice(0, end)}…`;
}
