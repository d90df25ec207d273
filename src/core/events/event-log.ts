import type { NewEvent } from "../model/event";
import type { Clock } from "../../ports/clock";
import type { Store } from "../../ports/store";

/**
 * Where every area appends its events, built by the typed constructors of its catalog
 * (vms/vm-events.ts, lifecycle/lifecycle-events.ts…). An event is written in the transaction
 * of the change it tells of, so the log and the state never disagree; appended outside one, it
 * is a transaction of its own.
 */
export class EventLog {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  append(...events: NewEvent[]): void {
    this.store.transaction(() => {
      const now = this.clock.now();
      for (const event of events) this.store.events.append(event, now);
    });
  }
}
