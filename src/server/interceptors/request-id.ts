import { randomBytes } from "node:crypto";
import { REQUEST_ID_KEY } from "../response-headers";
import type { Interceptor } from "./interceptor";

/** What a client's x-request-id may be: printable ASCII, no spaces, up to 128 characters. */
const REQUEST_ID_PATTERN = /^[\x21-\x7e]{1,128}$/;

/**
 * Gives every call its request id: the client's x-request-id when it sent a valid one, else one
 * made here. The handler, the core's events and logs, and the response headers carry it.
 */
export const requestIdInterceptor: Interceptor = (next) => (call) => {
  call.context.requestId = requestIdOf(call.metadata.get(REQUEST_ID_KEY)[0]);
  return next(call);
};

function requestIdOf(given: unknown): string {
  return typeof given === "string" && REQUEST_ID_PATTERN.test(given) ? given : nextRequestId();
}

/**
 * Request ids made here: 48 random bits drawn when the process starts, then a counter
 * ("5f0c2a9e7b31-1k4"). Unique within the process, most unlikely to repeat across restarts
 * or hosts, short to send in every response and cheap to make.
 */
const REQUEST_ID_PREFIX = randomBytes(6).toString("hex");
let requestCounter = 0;

export function nextRequestId(): string {
  return `${REQUEST_ID_PREFIX}-${(++requestCounter).toString(36)}`;
}
