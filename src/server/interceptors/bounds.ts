import { DomainError } from "../../core/errors";
import { SERVER } from "../server-errors";
import { settled, type Interceptor, type RpcCall } from "./interceptor";

/** The most bytes of request headers (names and values) a call may send. */
export const MAX_HEADER_BYTES = 16 * 1024;
/** The most request headers a call may send. */
export const MAX_HEADERS = 64;

/**
 * Request headers are bounded: over a bound, the call is answered RESOURCE_EXHAUSTED
 * (HEADERS_TOO_LARGE) and the connection goes on serving. (Node's own, higher ceilings, which
 * the server raises to 1,024 headers and 256 KiB, reset the stream alone beyond them; nghttp2's,
 * a header block in more than 9 frames or one header over 64 KiB compressed, end the
 * connection: docs/LIMITS.md.)
 */
export const headerBoundsInterceptor: Interceptor = (next) => (call) => {
  const { count, bytes } = headerSize(call);
  if (count > MAX_HEADERS) throw headersTooLarge(`${count} request headers, more than ${MAX_HEADERS}`, MAX_HEADERS, "headers");
  if (bytes > MAX_HEADER_BYTES) throw headersTooLarge(`${bytes} bytes of request headers, more than ${MAX_HEADER_BYTES}`, MAX_HEADER_BYTES, "bytes");
  return next(call);
};

function headerSize(call: RpcCall): { count: number; bytes: number } {
  let count = 0;
  let bytes = 0;
  for (const [name, values] of Object.entries(call.metadata.toHttp2Headers())) {
    for (const value of Array.isArray(values) ? values : [values]) {
      count++;
      bytes += name.length + String(value).length;
    }
  }
  return { count, bytes };
}

function headersTooLarge(what: string, limit: number, unit: string): DomainError {
  return new DomainError("resource-exhausted", SERVER.HEADERS_TOO_LARGE, `the call sent ${what}`, { limit: String(limit), unit });
}

/**
 * Streaming calls (Events, and the consoles and imports to come) hold a buffer and a
 * subscription each for as long as they last: at most `max` are open at once, on all
 * connections together; one more is RESOURCE_EXHAUSTED (TOO_MANY_STREAMS). One connection's
 * calls are bounded by HTTP/2 (SETTINGS_MAX_CONCURRENT_STREAMS).
 */
export function streamBoundsInterceptor(max: number): Interceptor {
  let open = 0;
  return (next) => (call) => {
    if (call.descriptor.methodKind === "unary") return next(call);
    if (open >= max) throw new DomainError("resource-exhausted", SERVER.TOO_MANY_STREAMS, `${max} streams are open, as many as the server takes: close one first`, { limit: String(max) });
    open++;
    return settled(next, call).finally(() => open--);
  };
}
