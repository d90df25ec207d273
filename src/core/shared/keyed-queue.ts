import { callCancelled } from "../errors";

/** One operation waiting for, or holding, its key. */
interface Slot {
  start(): void;
}

/**
 * Runs operations one at a time per key, in the order they came; operations on different keys
 * run side by side. An operation whose caller stops waiting before its turn leaves the queue
 * (CANCELLED) without holding up the ones behind it; once started, it runs to its end.
 */
export class KeyedQueue {
  /** Per key, the operation running (first) and those waiting behind it. */
  private readonly queues = new Map<string, Slot[]>();

  /** Runs `work` once the operations on `key` that came before it are done. */
  run<T>(key: string, signal: AbortSignal | undefined, what: string, work: () => T | Promise<T>): Promise<T> {
    return this.enqueue(key, signal, what, work, false);
  }

  /**
   * Runs `work` next on `key`: after the operation running now, before those waiting. For what
   * must happen before anything else may act on the key (settling a VM that just halted).
   */
  runNext<T>(key: string, what: string, work: () => T | Promise<T>): Promise<T> {
    return this.enqueue(key, undefined, what, work, true);
  }

  private enqueue<T>(key: string, signal: AbortSignal | undefined, what: string, work: () => T | Promise<T>, first: boolean): Promise<T> {
    if (signal?.aborted) return Promise.reject(callCancelled(`waiting to ${what}`));
    return new Promise<T>((resolve, reject) => {
      let queue = this.queues.get(key);
      if (!queue) this.queues.set(key, (queue = []));
      const cancel = () => {
        const waiting = this.queues.get(key);
        const at = waiting ? waiting.indexOf(slot) : -1;
        // Only a slot still waiting leaves: the first of the queue has started.
        if (at > 0) {
          waiting!.splice(at, 1);
          reject(callCancelled(`waiting to ${what}`));
        }
      };
      const slot: Slot = {
        start: () => {
          signal?.removeEventListener("abort", cancel);
          // An async call, so that what `work` throws before it awaits is a rejection too.
          const running = (async () => work())();
          running.then(resolve, reject).finally(() => this.next(key));
        },
      };
      // The running operation stays first; a slot that goes next sits behind it, before the others.
      if (first && queue.length > 1) queue.splice(1, 0, slot);
      else queue.push(slot);
      if (queue.length === 1) slot.start();
      else signal?.addEventListener("abort", cancel, { once: true });
    });
  }

  /** Whether an operation holds the key now. */
  busy(key: string): boolean {
    return this.queues.has(key);
  }

  private next(key: string): void {
    const queue = this.queues.get(key)!;
    queue.shift();
    if (queue.length === 0) this.queues.delete(key);
    else queue[0].start();
  }
}
