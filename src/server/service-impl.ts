import type { DescMessage, DescMethod, DescService, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { RpcContext } from "./rpc-context";

/**
 * Handler types derived from the generated service descriptors, in the manner of connect-es:
 * an implementation must have one handler per RPC with the RPC's own request and response
 * types, so a missing or mistyped handler fails `tsc`.
 */
export type UnaryImpl<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  ctx: RpcContext,
) => Promise<MessageInitShape<O>>;

export type ServerStreamingImpl<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  ctx: RpcContext,
) => AsyncIterable<MessageInitShape<O>>;

export type ClientStreamingImpl<I extends DescMessage, O extends DescMessage> = (
  requests: AsyncIterable<MessageShape<I>>,
  ctx: RpcContext,
) => Promise<MessageInitShape<O>>;

export type BidiStreamingImpl<I extends DescMessage, O extends DescMessage> = (
  requests: AsyncIterable<MessageShape<I>>,
  ctx: RpcContext,
) => AsyncIterable<MessageInitShape<O>>;

type MethodShape = Pick<DescMethod, "input" | "output" | "methodKind">;

export type MethodImpl<M extends MethodShape> = M extends {
  methodKind: infer K;
  input: infer I extends DescMessage;
  output: infer O extends DescMessage;
}
  ? K extends "unary"
    ? UnaryImpl<I, O>
    : K extends "server_streaming"
      ? ServerStreamingImpl<I, O>
      : K extends "client_streaming"
        ? ClientStreamingImpl<I, O>
        : BidiStreamingImpl<I, O>
  : never;

/** One handler per RPC of the service, keyed by the RPC's local name (getHostInfo). */
export type ServiceImpl<S extends DescService> = {
  [K in keyof S["method"]]: S["method"][K] extends MethodShape ? MethodImpl<S["method"][K]> : never;
};
