import * as grpc from "@grpc/grpc-js";
import * as http2 from "node:http2";

export const REQUEST_ID_KEY = "x-request-id";

/** HPACK never indexes these; see ResponseHeaders. */
const NEVER_INDEXED: readonly string[] = Object.freeze([REQUEST_ID_KEY]);

/**
 * The date header, given no value at all: Node sends no line for it. (Node's types allow only a
 * string for a date; its headers take a list of values for any name.)
 */
const DATE_KEY: string = "date";
const NO_VALUE = Object.freeze([]) as unknown as string[];

/** Spread into response headers Steward sends itself: no date (see ResponseHeaders). */
export const NO_DATE: http2.OutgoingHttpHeaders = Object.freeze({ [DATE_KEY]: NO_VALUE });

/**
 * The headers Steward sends before a call's first response (or with its status): x-request-id
 * and nothing of its own besides. grpc-js sends what toHttp2Headers() returns, spread into its
 * own headers, and reads nothing else of a server's metadata; this one is sent on every call, so
 * it is made without what a general Metadata costs (its key and value checked against patterns;
 * the request id was checked when it was read, or made here).
 *
 * - x-request-id goes as a never-indexed HPACK literal: its value is new on every call, so
 *   entering it in the connection's header table (what HPACK does by default) would never spare
 *   a byte, and would push out the headers that do repeat.
 * - date is not sent. The gRPC protocol has no use for it and the gRPC servers of other
 *   languages (Go, C++, Java) do not send it; Node's http2 adds it to every response that lacks
 *   one, which every client then decodes into its response metadata. A date of no values stops
 *   that (Node adds a date only where there is none, and writes no line for an empty list). It
 *   also spares Node's way of adding the header, which costs more than the header: V8 misses
 *   its inline cache for that property on every response.
 */
export class ResponseHeaders extends grpc.Metadata {
  constructor(private readonly requestId: string) {
    super();
    // What get(), getMap() and clone() read; set() would check the key and value again.
    this.internalRepr.set(REQUEST_ID_KEY, [requestId]);
  }

  override toHttp2Headers(): http2.OutgoingHttpHeaders {
    return { [REQUEST_ID_KEY]: this.requestId, [DATE_KEY]: NO_VALUE, [http2.sensitiveHeaders]: NEVER_INDEXED };
  }
}
