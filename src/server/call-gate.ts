import type { Metadata } from "@grpc/grpc-js";
import { BaseServerInterceptingCall } from "@grpc/grpc-js/build/src/server-interceptors";
import * as http2 from "node:http2";
import type { Logger } from "pino";
import { DomainError } from "../core/errors";
import { toRpcStatus } from "./error-status";
import { NO_DATE } from "./response-headers";
import { SERVER } from "./server-errors";

/** What the gate lets in: connections, calls, and bytes of requests no handler has taken. */
export interface GateLimits {
  maxConnections: number;
  maxCalls: number;
  maxPendingRequestBytes: number;
  /** The largest message: what a compressed one is counted as, since it may inflate to that. */
  maxMessageBytes: number;
}

type StreamListener = (stream: http2.ServerHttp2Stream, ...rest: unknown[]) => void;
type AnyHttp2Server = http2.Http2Server | http2.Http2SecureServer;

/** The most bytes of request headers (names and values) a call may send. */
export const MAX_HEADER_BYTES = 16 * 1024;
/** The most request headers a call may send, pseudo-headers aside. */
export const MAX_HEADERS = 64;

/** How often, at most, the log tells of what the gate turned away. */
const TELL_INTERVAL_MS = 10_000;

/**
 * Bounds on what calls hold before any handler sees them. grpc-js reads a request as it comes
 * and keeps each message until it is whole, and a whole one until the client ends its side (a
 * unary call) or the handler reads it (a stream): a client that opens many calls and sends large
 * messages without ever ending them would hold memory without a handler ever running, and so
 * escape every bound a handler or an interceptor keeps. The gate stands in front of
 * grpc-js on each HTTP/2 server:
 *   - at most `maxConnections` connections are open on each listening address (net.Server's
 *     maxConnections); more are closed as they come;
 *   - a call's headers are at most MAX_HEADERS and MAX_HEADER_BYTES: over them, it is answered
 *     RESOURCE_EXHAUSTED (HEADERS_TOO_LARGE) and the connection goes on serving. (Node's own,
 *     higher ceilings, which the server raises to 1,024 headers and 256 KiB, reset the stream
 *     alone beyond them; nghttp2's, a header block in more than 9 frames or one header over
 *     64 KiB compressed, end the connection: docs/LIMITS.md.) Counted on Node's raw list of
 *     them, before grpc-js reads them, so that nothing is made of them per call;
 *   - at most `maxCalls` calls are open on all connections together, counted from their
 *     headers; one more is answered RESOURCE_EXHAUSTED (TOO_MANY_CALLS) before grpc-js takes it;
 *   - at most `maxPendingRequestBytes` of request messages are held that no handler has taken
 *     (a unary call's for the whole call; a stream's until the handler reads each), on all calls
 *     together; the call whose bytes would pass it is answered RESOURCE_EXHAUSTED
 *     (PENDING_REQUESTS_TOO_LARGE), and grpc-js reads no more of it (meterRequests).
 */
export class CallGate {
  private calls = 0;
  private heldBytes = 0;
  /** What was turned away since the log last told of it; the timer of its next telling. */
  private turnedAway = { connections: 0, calls: 0, requests: 0, headers: 0 };
  private telling: NodeJS.Timeout | undefined;

  constructor(
    private readonly limits: GateLimits,
    private readonly log: Logger,
  ) {}

  /** Puts the gate before the 'stream' handlers grpc-js has set on `server`. */
  guard(server: AnyHttp2Server): void {
    server.maxConnections = this.limits.maxConnections;
    server.on("drop", () => this.tell("connections"));
    const handlers = server.listeners("stream") as StreamListener[];
    server.removeAllListeners("stream");
    server.on("stream", (stream: http2.ServerHttp2Stream, headers: unknown, flags: unknown, rawHeaders: readonly string[]) => {
      if (!this.admit(stream, rawHeaders)) return;
      for (const handler of handlers) handler.call(server, stream, headers, flags, rawHeaders);
    });
  }

  /** Whether the stream may go on to grpc-js; if so, it is counted, and metered, until it closes. */
  private admit(stream: http2.ServerHttp2Stream, rawHeaders: readonly string[]): boolean {
    const headersRefused = headersOverBounds(rawHeaders);
    if (headersRefused) {
      this.tell("headers");
      refuse(stream, headersRefused);
      return false;
    }
    if (this.calls >= this.limits.maxCalls) {
      this.tell("calls");
      const { maxCalls } = this.limits;
      refuse(stream, new DomainError("resource-exhausted", SERVER.TOO_MANY_CALLS, `${maxCalls} calls are open, as many as the server takes: try again later`, { limit: String(maxCalls) }));
      return false;
    }
    this.calls++;
    const meter = new MessageMeter(this.limits.maxMessageBytes);
    let counted = 0;
    /**
     * Counts what the meter holds now; the refusal when that passes the bound. A refused call
     * stays counted until its stream closes: what grpc-js had of it is held until then.
     */
    const recount = (): DomainError | undefined => {
      this.heldBytes += meter.held - counted;
      counted = meter.held;
      if (this.heldBytes <= this.limits.maxPendingRequestBytes) return undefined;
      METERED.delete(stream);
      this.tell("requests");
      return this.requestsTooLarge();
    };
    METERED.set(stream, {
      received: (chunk) => {
        meter.take(chunk);
        return recount();
      },
      taken: () => {
        meter.release();
        recount();
      },
    });
    stream.once("close", () => {
      METERED.delete(stream);
      this.calls--;
      this.heldBytes -= counted;
      counted = 0;
    });
    return true;
  }

  private requestsTooLarge(): DomainError {
    const limit = this.limits.maxPendingRequestBytes;
    return new DomainError(
      "resource-exhausted",
      SERVER.PENDING_REQUESTS_TOO_LARGE,
      `the server holds ${limit} bytes of requests its handlers have not taken, as many as it takes: try again later`,
      { limit: String(limit) },
    );
  }

  /**
   * Tells the log what was turned away: the first at once, then what came since every few
   * seconds while more comes, so that a flood of refusals is not a flood of log lines. (The
   * access log never sees these calls.)
   */
  private tell(what: keyof CallGate["turnedAway"]): void {
    this.turnedAway[what]++;
    if (this.telling) return;
    this.flushTold();
  }

  private flushTold(): void {
    const { connections, calls, requests, headers } = this.turnedAway;
    if (connections + calls + requests + headers === 0) {
      this.telling = undefined;
      return;
    }
    this.log.warn({ turnedAway: this.turnedAway, limits: this.limits }, "turned away connections or calls over the server's bounds");
    this.turnedAway = { connections: 0, calls: 0, requests: 0, headers: 0 };
    this.telling = setTimeout(() => this.flushTold(), TELL_INTERVAL_MS).unref();
  }
}

/** The refusal of a call whose headers (Node's raw list: name, value, name, value…) pass a bound. */
function headersOverBounds(rawHeaders: readonly string[]): DomainError | undefined {
  let count = 0;
  let bytes = 0;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i].startsWith(":")) continue;
    count++;
    bytes += rawHeaders[i].length + rawHeaders[i + 1].length;
  }
  if (count > MAX_HEADERS) return headersTooLarge(`${count} request headers, more than ${MAX_HEADERS}`, MAX_HEADERS, "headers");
  if (bytes > MAX_HEADER_BYTES) return headersTooLarge(`${bytes} bytes of request headers, more than ${MAX_HEADER_BYTES}`, MAX_HEADER_BYTES, "bytes");
  return undefined;
}

function headersTooLarge(what: string, limit: number, unit: string): DomainError {
  return new DomainError("resource-exhausted", SERVER.HEADERS_TOO_LARGE, `the call sent ${what}`, { limit: String(limit), unit });
}

/**
 * Answers a stream that grpc-js never saw with a gRPC status (trailers only), and closes it.
 */
function refuse(stream: http2.ServerHttp2Stream, error: DomainError): void {
  // A client may reset the stream at any time: its error is no one's to handle.
  stream.on("error", () => undefined);
  const status = toRpcStatus(error, "");
  stream.respond(
    { ":status": 200, "content-type": "application/grpc", "grpc-status": String(status.code), "grpc-message": encodeURI(status.details), ...status.metadata.toHttp2Headers(), ...NO_DATE },
    { endStream: true },
  );
  stream.close(http2.constants.NGHTTP2_NO_ERROR);
}

/** A metered stream's request bytes: as they come (undefined, or the refusal of its call), and as its handler takes a message. */
interface Meter {
  received(chunk: Buffer): DomainError | undefined;
  taken(): void;
}

/** The streams the gate meters, each with its meter. */
const METERED = new WeakMap<http2.ServerHttp2Stream, Meter>();

interface GrpcJsCall {
  stream: http2.ServerHttp2Stream;
  handleDataFrame: (this: GrpcJsCall, data: Buffer) => void;
  sendStatus: (this: GrpcJsCall, status: { code: number; details: string; metadata: Metadata }) => void;
}

let metering = false;

/**
 * What tells the gate that the handler of a call whose requests stream (client streaming, bidi)
 * took one more of them: its bytes are the handler's now, no longer held for it. A unary or
 * server-streaming call's request is held for as long as the call lasts, its handler's run
 * included. `call` is what grpc-js gives the handler; its meter is looked up once.
 */
export function requestTaker(call: object): () => void {
  const stream = http2StreamOf(call);
  return () => {
    // Looked up each time: a call refused for the bound is metered no more.
    if (stream) METERED.get(stream)?.taken();
  };
}

/** The HTTP/2 stream under what grpc-js gives a handler: its call, through any interceptors. */
function http2StreamOf(call: object): http2.ServerHttp2Stream | undefined {
  let inner = (call as { call?: object }).call;
  for (let hops = 0; inner && hops < 8; hops++) {
    const { stream, nextCall } = inner as { stream?: http2.ServerHttp2Stream; nextCall?: object };
    if (stream) return stream;
    inner = nextCall;
  }
  return undefined;
}

/**
 * grpc-js's call reads each chunk of its stream's request in handleDataFrame: wrapped, the
 * chunk goes through the gate's meter first, and a call the meter refuses is answered by
 * grpc-js's own sendStatus, which then takes the call as done, and its stream is closed.
 * A test fails if a grpc-js upgrade stops calling what this wraps.
 */
export function meterRequests(): void {
  if (metering) return;
  metering = true;
  const call = BaseServerInterceptingCall.prototype as unknown as GrpcJsCall;
  const handleDataFrame = call.handleDataFrame;
  call.handleDataFrame = function (this: GrpcJsCall, data: Buffer) {
    const refusal = METERED.get(this.stream)?.received(data);
    if (!refusal) return handleDataFrame.call(this, data);
    const status = toRpcStatus(refusal, "");
    this.sendStatus({ code: status.code, details: status.details, metadata: status.metadata });
    // What grpc-js holds of the call goes with its stream; what the client still sends is not wanted.
    this.stream.close(http2.constants.NGHTTP2_NO_ERROR);
  };
}

/**
 * Follows the gRPC framing of a request (a flag byte, a 4-byte length, the message) to tell how
 * many bytes it holds: those of the message under way, and of the whole messages not yet
 * released (taken by the handler), each with its 5-byte prefix; a compressed one as what it may
 * inflate to.
 */
export class MessageMeter {
  /** Bytes of the message under way, received so far. */
  pending = 0;
  /** The sizes of the whole messages not yet released, oldest first, and their sum. */
  private readonly whole: number[] = [];
  private wholeBytes = 0;
  private readonly prefix = Buffer.alloc(5);
  private prefixHave = 0;
  private bodyLeft = 0;

  /** A compressed message is counted as `inflatedCeiling` bytes at least: grpc-js inflates it whole. */
  constructor(private readonly inflatedCeiling = 0) {}

  get held(): number {
    return this.pending + this.wholeBytes;
  }

  take(chunk: Buffer): void {
    for (let at = 0; at < chunk.length; ) {
      if (this.bodyLeft > 0) {
        const n = Math.min(this.bodyLeft, chunk.length - at);
        this.bodyLeft -= n;
        this.pending += n;
        at += n;
        if (this.bodyLeft === 0) this.completeMessage();
        continue;
      }
      const n = Math.min(this.prefix.length - this.prefixHave, chunk.length - at);
      chunk.copy(this.prefix, this.prefixHave, at, at + n);
      this.prefixHave += n;
      this.pending += n;
      at += n;
      if (this.prefixHave === this.prefix.length) {
        this.prefixHave = 0;
        this.bodyLeft = this.prefix.readUInt32BE(1);
        if (this.bodyLeft === 0) this.completeMessage();
      }
    }
  }

  /** The oldest whole message was taken. */
  release(): void {
    this.wholeBytes -= this.whole.shift() ?? 0;
  }

  private completeMessage(): void {
    const compressed = (this.prefix[0] & 1) === 1;
    const size = compressed ? Math.max(this.pending, this.inflatedCeiling) : this.pending;
    this.whole.push(size);
    this.wholeBytes += size;
    this.pending = 0;
  }
}
