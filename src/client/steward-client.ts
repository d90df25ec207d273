import { create, type DescMessage, type DescMethod, type DescService, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { serviceDefinition } from "../server/grpc-definitions";

/**
 * A promise-based grpc-js client built from the same descriptors as the server: one method per
 * RPC, typed from the contract. Used by the tests and benchmarks, and usable by any Node
 * program that talks to Steward.
 */

export interface CallOptions {
  /** Request metadata, such as x-request-id. */
  metadata?: Record<string, string>;
  /** Milliseconds from now until the deadline. */
  timeoutMs?: number;
  /** Cancels the call when aborted. */
  signal?: AbortSignal;
  /** Receives the response headers. */
  onHeaders?: (headers: grpc.Metadata) => void;
}

type Unary<I extends DescMessage, O extends DescMessage> = (request: MessageInitShape<I>, options?: CallOptions) => Promise<MessageShape<O>>;
type ServerStreaming<I extends DescMessage, O extends DescMessage> = (request: MessageInitShape<I>, options?: CallOptions) => AsyncIterable<MessageShape<O>>;
type ClientStreaming<I extends DescMessage, O extends DescMessage> = (
  requests: AsyncIterable<MessageInitShape<I>> | Iterable<MessageInitShape<I>>,
  options?: CallOptions,
) => Promise<MessageShape<O>>;
type BidiStreaming<I extends DescMessage, O extends DescMessage> = (
  requests: AsyncIterable<MessageInitShape<I>> | Iterable<MessageInitShape<I>>,
  options?: CallOptions,
) => AsyncIterable<MessageShape<O>>;

type ClientMethod<M> = M extends { methodKind: infer K; input: infer I extends DescMessage; output: infer O extends DescMessage }
  ? K extends "unary"
    ? Unary<I, O>
    : K extends "server_streaming"
      ? ServerStreaming<I, O>
      : K extends "client_streaming"
        ? ClientStreaming<I, O>
        : BidiStreaming<I, O>
  : never;

export type StewardClient<S extends DescService> = { [K in keyof S["method"]]: ClientMethod<S["method"][K]> } & {
  close(): void;
};

/**
 * How much a server may send before the client asks for more (HTTP/2 flow control). grpc-js
 * keeps HTTP/2's 64 KiB, so an ExportVolume of 1 MiB chunks waited for a window update every
 * 64 KiB: with 4 MiB it ran half as fast again. The memory it allows is the client's to hold,
 * and it is per call: a client that stops reading an Events stream holds up to 4 MiB of events
 * before the server feels it and, past its events buffer, cuts the stream off. A caller that
 * wants the server to feel a slow reader sooner passes a smaller window in `channelOptions`.
 */
const RECEIVE_WINDOW: grpc.ChannelOptions = { "grpc-node.flow_control_window": 4 * 1024 * 1024 };

export function createClient<S extends DescService>(
  service: S,
  address: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  channelOptions: grpc.ChannelOptions = {},
): StewardClient<S> {
  const Constructor = grpc.makeGenericClientConstructor(serviceDefinition(service), service.name);
  const client = new Constructor(address, credentials, { ...RECEIVE_WINDOW, ...channelOptions }) as unknown as Record<string, (...args: unknown[]) => unknown> &
    grpc.Client;
  const methods: Record<string, unknown> = { close: () => client.close() };
  for (const method of service.methods) methods[method.localName] = clientMethod(client, method);
  return methods as StewardClient<S>;
}

function clientMethod(client: Record<string, (...args: unknown[]) => unknown>, method: DescMethod) {
  const invoke = client[method.localName].bind(client);
  const request = (init: unknown) => create(method.input, init as never);
  switch (method.methodKind) {
    case "unary":
      return (init: unknown, options: CallOptions = {}) =>
        new Promise((resolve, reject) => {
          const call = invoke(request(init), metadataOf(options), callOptionsOf(options), (error: grpc.ServiceError | null, response: unknown) =>
            error ? reject(error) : resolve(response),
          ) as grpc.ClientUnaryCall;
          follow(call, options);
        });
    case "server_streaming":
      return (init: unknown, options: CallOptions = {}) => {
        const call = invoke(request(init), metadataOf(options), callOptionsOf(options)) as grpc.ClientReadableStream<unknown>;
        follow(call, options);
        return call;
      };
    case "client_streaming":
      return (requests: AsyncIterable<unknown> | Iterable<unknown>, options: CallOptions = {}) =>
        new Promise((resolve, reject) => {
          const call = invoke(metadataOf(options), callOptionsOf(options), (error: grpc.ServiceError | null, response: unknown) =>
            error ? reject(error) : resolve(response),
          ) as grpc.ClientWritableStream<unknown>;
          follow(call, options);
          void pipeRequests(call, requests, request);
        });
    case "bidi_streaming":
      return (requests: AsyncIterable<unknown> | Iterable<unknown>, options: CallOptions = {}) => {
        const call = invoke(metadataOf(options), callOptionsOf(options)) as grpc.ClientDuplexStream<unknown, unknown>;
        follow(call, options);
        void pipeRequests(call, requests, request);
        return call;
      };
  }
}

async function pipeRequests(
  call: grpc.ClientWritableStream<unknown>,
  requests: AsyncIterable<unknown> | Iterable<unknown>,
  toMessage: (init: unknown) => unknown,
): Promise<void> {
  try {
    for await (const init of requests) {
      if (!call.write(toMessage(init))) await new Promise((resolve) => call.once("drain", resolve));
    }
    call.end();
  } catch (error) {
    call.cancel();
    throw error;
  }
}

function follow(call: grpc.Call, options: CallOptions): void {
  if (options.onHeaders) call.on("metadata", options.onHeaders);
  if (options.signal) {
    if (options.signal.aborted) call.cancel();
    else options.signal.addEventListener("abort", () => call.cancel(), { once: true });
  }
}

function metadataOf(options: CallOptions): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(options.metadata ?? {})) metadata.set(key, value);
  return metadata;
}

function callOptionsOf(options: CallOptions): grpc.CallOptions {
  return options.timeoutMs === undefined ? {} : { deadline: Date.now() + options.timeoutMs };
}
