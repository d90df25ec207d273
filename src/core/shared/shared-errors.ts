import { declareReasons, DomainError, InvalidFieldError } from "../errors";

/** Reasons of what every area shares: page tokens, retried requests, operations. */
const R = declareReasons("shared", ["INVALID_PAGE_TOKEN", "REQUEST_ID_REUSED", "INVALID_REQUEST_ID", "OPERATIONS_WOULD_DEADLOCK", "REQUEST_UNDER_WAY"]);

export function invalidPageToken(): InvalidFieldError {
  return new InvalidFieldError("page_token", "not a token of a previous reply to this same request", R.INVALID_PAGE_TOKEN);
}

export function requestIdReused(why: string): InvalidFieldError {
  return new InvalidFieldError("request_id", why, R.REQUEST_ID_REUSED);
}

export function invalidRequestId(): InvalidFieldError {
  return new InvalidFieldError("request_id", "a request_id is a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", R.INVALID_REQUEST_ID);
}

/** Operations under way would wait for each other for ever: this one is refused; a retry works once they are done. */
export function operationsWouldDeadlock(what: string): DomainError {
  return new DomainError("aborted", R.OPERATIONS_WOULD_DEADLOCK, `cannot ${what} now: it would wait for operations that wait for it; retry`);
}

/** A retry came while the request it repeats (by its request_id) is still at work: its answer is not known yet. */
export function requestUnderWay(requestId: string): DomainError {
  return new DomainError("aborted", R.REQUEST_UNDER_WAY, `the request with request_id ${requestId} is still at work: retry once it ends, and get its answer`, { request_id: requestId });
}

export function negativePageSize(): InvalidFieldError {
  return new InvalidFieldError("page_size", "must not be negative");
}
