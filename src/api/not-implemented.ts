import { notImplemented } from "../core/errors";
import type { RpcContext } from "../server/rpc-context";

/**
 * The handler of an RPC that the contract defines and a later version implements: it answers
 * UNIMPLEMENTED naming the RPC, never a fake success. Listing it per RPC keeps every service's
 * implementation complete in the type checker's eyes.
 */
export function notYetImplemented(_request: unknown, ctx: RpcContext): never {
  throw notImplemented(ctx.method);
}
