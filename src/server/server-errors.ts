import { declareReasons, DomainError, InvalidFieldError, quote } from "../core/errors";

/** Reasons the server gives of its own: requests it cannot read, health, and failures it did not expect. */
export const SERVER = declareReasons("server", [
  "MALFORMED_REQUEST",
  "SERVICE_UNKNOWN",
  "INTERNAL",
  // Statuses grpc-js answers by itself, given details (grpc-own-statuses.ts).
  "MESSAGE_TOO_LARGE",
  "METHOD_UNKNOWN",
  "ENCODING_UNSUPPORTED",
  "DEADLINE_EXCEEDED",
  "TRANSPORT_FAILURE",
  // Bounds on what one caller holds (call-gate.ts, interceptors/bounds.ts).
  "HEADERS_TOO_LARGE",
  "TOO_MANY_STREAMS",
  // The gate before grpc-js (call-gate.ts).
  "TOO_MANY_CALLS",
  "PENDING_REQUESTS_TOO_LARGE",
]);

export function malformedRequest(field: string, cause: string): InvalidFieldError {
  return new InvalidFieldError(field, `cannot be decoded (${cause})`, SERVER.MALFORMED_REQUEST);
}

export function serviceUnknown(service: string): DomainError {
  return new DomainError("not-found", SERVER.SERVICE_UNKNOWN, `unknown service ${quote(service)}`, { service: quote(service) });
}
