import type { Clock } from "../../ports/clock";
import type { Store } from "../../ports/store";
import { invalidRequestId, requestIdReused } from "./shared-errors";
import { isUuid } from "./uuid";

/** How long a request_id is remembered: a retry within it returns the first result. */
export const REQUEST_ID_RETENTION_MS = 24 * 60 * 60 * 1000;

/**
 * What retry-safe requests (AIP-155's request_id) asked and produced the first time, so that a
 * retry returns the same result instead of doing the work again. An id is a UUID; it stands for
 * one request: the same id with a request that asks for something else is refused. Ids are
 * remembered for REQUEST_ID_RETENTION_MS.
 */
export class RequestLedger {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  /** Refuses a request_id that is not a UUID (INVALID_ARGUMENT); an empty one is no id. */
  checkKey(key: string): void {
    if (key && !isUuid(key)) throw invalidRequestId();
  }

  /**
   * The result (an id) of the earlier request with this key; undefined when there was none (or
   * it is forgotten). A key used by another kind of request, or by a request that asked for
   * something else, is refused (REQUEST_ID_REUSED).
   */
  earlier(key: string, rpc: string, request: object): string | undefined {
    if (!key) return undefined;
    const earlier = this.store.requests.find(key.toLowerCase());
    if (!earlier || this.forgotten(earlier.time)) return undefined;
    if (earlier.rpc !== rpc) throw requestIdReused(`was used by an earlier ${earlier.rpc} request`);
    if (earlier.request !== "" && earlier.request !== written(request)) throw requestIdReused(`was used by an earlier ${rpc} request that asked for something else`);
    return earlier.result;
  }

  /** Remembers a request's result, within the transaction of its change; forgets the ones too old. */
  remember(key: string, rpc: string, request: object, result: string): void {
    if (!key) return;
    const time = this.clock.now();
    this.store.requests.forgetBefore(new Date(time.getTime() - REQUEST_ID_RETENTION_MS));
    this.store.requests.remember(key.toLowerCase(), { rpc, request: written(request), result, time });
  }

  private forgotten(time: Date): boolean {
    return this.clock.now().getTime() - time.getTime() > REQUEST_ID_RETENTION_MS;
  }
}

/** A request written down so that two of them compare equal when they ask the same: keys sorted. */
function written(request: object): string {
  return JSON.stringify(request, (_key, value: unknown) =>
    value && typeof value === "object" && !Array.isArray(value) ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : value,
  );
}
