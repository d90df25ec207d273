import type { Clock } from "../../ports/clock";
import type { Store } from "../../ports/store";
import { requestIdReused } from "./shared-errors";

/**
 * What retry-safe requests (AIP-155's request_id) produced the first time, so that a retry
 * returns the same result instead of doing the work again.
 */
export class RequestLedger {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  /**
   * The result (an id) of the earlier request with this key; undefined when there was none.
   * A key used by another kind of request is refused (REQUEST_ID_REUSED).
   */
  earlier(key: string, rpc: string): string | undefined {
    if (!key) return undefined;
    const earlier = this.store.requests.find(key);
    if (!earlier) return undefined;
    if (earlier.rpc !== rpc) throw requestIdReused(earlier.rpc);
    return earlier.result;
  }

  /** Remembers a request's result, within the transaction of its change. */
  remember(key: string, rpc: string, result: string): void {
    if (key) this.store.requests.remember(key, rpc, result, this.clock.now());
  }
}
