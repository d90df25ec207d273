import * as grpc from "@grpc/grpc-js";
import * as http2 from "node:http2";

export const REQUEST_ID_KEY = "x-request-id";

/** HPACK never indexes these; see ResponseHeaders. */
const NEVER_INDEXED: readonly string[] = Object.freeze([REQUEST_ID_KEY]);

/**
 * The headers Steward sends before a call's first response (or with its status): x-request-id,
 * and date. grpc-js sends what toHttp2Headers() returns, spread into its own headers, and reads
 * nothing else of a server's metadata; this one is sent on every call, so it is made without
 * what a general Metadata costs (its key and value checked against patterns; the request id was
 * checked when it was read, or made here).
 *
 * - x-request-id goes as a never-indexed HPACK literal: its value is new on every call, so
 *   entering it in the connection's header table (what HPACK does by default) would never spare
 *   a byte, and would push out the headers that do repeat.
 * - date is the header Node adds to every HTTP/2 response that lacks one, in the same form
 *   (made once a second, as Node does). Given here, it spares Node's own way of adding it, which
 *   costs more than the header (V8 misses its inline cache for that property on every response).
 */
export class ResponseHeaders extends grpc.Metadata {
  constructor(private readonly requestId: string) {
    super();
    // What get(), getMap() and clone() read; set() would check the key and value again.
    this.internalRepr.set(REQUEST_ID_KEY, [requestId]);
  }

  override toHttp2Headers(): http2.OutgoingHttpHeaders {
    return { [REQUEST_ID_KEY]: this.requestId, date: httpDate(), [http2.sensitiveHeaders]: NEVER_INDEXED };
  }
}

let dateSecond = NaN;
let dateText = "";

/** The HTTP date of `now` ("Sat, 21 Nov 2026 12:00:00 GMT"), formatted once per second. */
export function httpDate(now = Date.now()): string {
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(second * 1000).toUTCString();
  }
  return dateText;
}
