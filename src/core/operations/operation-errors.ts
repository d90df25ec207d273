import { CONTRACT, declareReasons, DomainError, failedPrecondition, InvalidFieldError, notFound, quote } from "../errors";

/** Reasons of operations (AIP-151): finding, listing and ending them. */
const R = declareReasons("operations", ["OPERATION_NOT_FOUND", "OPERATION_RUNNING", "INVALID_OPERATION_NAME", "INVALID_OPERATION_FILTER", "OPERATION_INTERRUPTED", "OPERATION_RESULT_GONE"]);

export function operationNotFound(name: string): DomainError {
  return notFound(R.OPERATION_NOT_FOUND, `no operation ${quote(name)} (an operation is kept for 24 hours after it ends)`, { operation: quote(name), field: "name" });
}

export function operationRunning(name: string): DomainError {
  return failedPrecondition(R.OPERATION_RUNNING, `${name} is still running: cancel it, or wait for it to end`, { operation: name });
}

export function invalidOperationName(name: string): InvalidFieldError {
  return new InvalidFieldError("name", `${quote(name)} is not an operation's name (operations/<uuid>)`, R.INVALID_OPERATION_NAME);
}

export function invalidOperationFilter(term: string): InvalidFieldError {
  return new InvalidFieldError("filter", `cannot filter by ${quote(term)}: use done=true, done=false, kind=<kind> or target=<vm>, joined by " AND "`, R.INVALID_OPERATION_FILTER);
}

/**
 * The operation ended with the Steward that ran it. Its work could not undo what it had done
 * half: the areas that work on disk clear, as they start, what such work left.
 */
export function operationInterrupted(): DomainError {
  return new DomainError("aborted", R.OPERATION_INTERRUPTED, "Steward stopped while the operation ran; retry it");
}

/** A request_id names an operation that is no longer kept. */
export function operationResultGone(requestId: string, name: string): DomainError {
  return failedPrecondition(R.OPERATION_RESULT_GONE, `the operation ${name} that request ${requestId} began is no longer kept`, { request_id: requestId, operation: name });
}

/** The operation was cancelled (CancelOperation) and undid what it had made. */
export function operationCancelled(name: string): DomainError {
  return new DomainError("cancelled", CONTRACT.CANCELLED, `${name} was cancelled; nothing it began is left`, { operation: name });
}
