import { DomainError } from "../../core/errors";
import { SERVER } from "../server-errors";
import { settled, type Interceptor } from "./interceptor";

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
