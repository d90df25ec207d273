import { callCancelled } from "../errors";
import { operationsWouldDeadlock } from "./shared-errors";

/** One operation waiting for, or holding, its key. */
interface Slot {
  start(): void;
}

/** How an operation is queued. */
export interface QueueOptions {
  /**
   * Whose operation it is: when its signal aborts (the caller stops waiting), an operation still
   * waiting leaves the queue (CANCELLED). Read only when the operation has to wait: an RPC's
   * signal is made when first asked for.
   */
  caller?: { readonly signal: AbortSignal };
  /** What the operation does, for the errors that say why it did not run. */
  what: string;
  /**
   * The key held by the operation that asks for this one, when operations nest (a start that
   * holds its VM starts the VM's netvm): a wait that would close a circle of operations waiting
   * for each other is refused at once (ABORTED) instead of hanging.
   */
  heldBy?: string;
  /** After the operation running now, before those waiting (settling a VM that just halted). */
  next?: boolean;
}

/**
 * Runs operations one at a time per key, in the order they came; operations on different keys
 * run side by side. An operation whose caller stops waiting before its turn leaves the queue
 * (CANCELLED) without holding up the ones behind it; once started, it runs to its end. An
 * operation that does all its work at once (returns no promise) lets go of its key at once:
 * calls that come together, as a burst of CreateVm in one read from a socket, do not queue
 * behind each other for nothing.
 */
export class KeyedQueue {
  /** Per key, the operation running (first) and those waiting behind it. */
  private readonly queues = new Map<string, Slot[]>();
  /** Per key held by a running operation, the key that operation waits for (nested). */
  private readonly waitsFor = new Map<string, string>();

  run<T>(key: string, options: QueueOptions, work: () => T | Promise<T>): Promise<T> {
    const { what, heldBy } = options;
    if (heldBy !== undefined && this.wouldDeadlock(heldBy, key)) return Promise.reject(operationsWouldDeadlock(what));
    return new Promise<T>((resolve, reject) => {
      let queue = this.queues.get(key);
      if (!queue) this.queues.set(key, (queue = []));
      /** The caller's signal, once the operation waits (and only then). */
      const waiting: { signal?: AbortSignal } = {};
      const stopWaiting = () => {
        waiting.signal?.removeEventListener("abort", cancel);
        if (heldBy !== undefined) this.waitsFor.delete(heldBy);
      };
      const cancel = () => {
        const waiting = this.queues.get(key);
        const at = waiting ? waiting.indexOf(slot) : -1;
        // Only a slot still waiting leaves: the first of the queue has started.
        if (at > 0) {
          waiting!.splice(at, 1);
          stopWaiting();
          reject(callCancelled(`waiting to ${what}`));
        }
      };
      const slot: Slot = {
        start: () => {
          stopWaiting();
          let result: T | Promise<T>;
          try {
            result = work();
          } catch (error) {
            // Whatever `work` threw goes to its caller as it is, Error or not.
            // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
            reject(error);
            return this.next(key);
          }
          if (!(result instanceof Promise)) {
            resolve(result);
            return this.next(key);
          }
          result.then(resolve, reject).finally(() => this.next(key));
        },
      };
      // The running operation stays first; a slot that goes next sits behind it, before the others.
      if (options.next && queue.length > 1) queue.splice(1, 0, slot);
      else queue.push(slot);
      if (queue.length === 1) return slot.start();
      const signal = (waiting.signal = options.caller?.signal);
      if (signal?.aborted) {
        queue.splice(queue.indexOf(slot), 1);
        return reject(callCancelled(`waiting to ${what}`));
      }
      if (heldBy !== undefined) this.waitsFor.set(heldBy, key);
      signal?.addEventListener("abort", cancel, { once: true });
    });
  }

  /** Whether an operation holds the key now. */
  busy(key: string): boolean {
    return this.queues.has(key);
  }

  /**
   * Whether the operation holding `heldBy`, waiting for `key`, would close a circle: the one
   * holding `key` waits (through others, maybe) for `heldBy`.
   */
  private wouldDeadlock(heldBy: string, key: string): boolean {
    const seen = new Set<string>();
    for (let at: string | undefined = key; at !== undefined && !seen.has(at); at = this.waitsFor.get(at)) {
      if (at === heldBy) return true;
      seen.add(at);
    }
    return false;
  }

  private next(key: string): void {
    const queue = this.queues.get(key)!;
    queue.shift();
    if (queue.length === 0) this.queues.delete(key);
    else queue[0].start();
  }
}
