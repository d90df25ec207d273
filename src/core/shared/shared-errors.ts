import { declareReasons, InvalidFieldError } from "../errors";

/** Reasons of what every area shares: page tokens and retried requests. */
const R = declareReasons("shared", ["INVALID_PAGE_TOKEN", "REQUEST_ID_REUSED"]);

export function invalidPageToken(): InvalidFieldError {
  return new InvalidFieldError("page_token", "not a token of a previous reply to this same request", R.INVALID_PAGE_TOKEN);
}

export function requestIdReused(earlierRpc: string): InvalidFieldError {
  return new InvalidFieldError("request_id", `was used by an earlier ${earlierRpc} request`, R.REQUEST_ID_REUSED);
}
