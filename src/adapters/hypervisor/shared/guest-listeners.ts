import type { GuestEvent } from "../../../ports/hypervisor";

/** The events a guest keeps while no one listens: what it did between its launch and the core's taking it. */
const MAX_UNHEARD = 64;

/**
 * A guest's listeners, as the port's onEvent promises them: each event to every listener, in
 * order; what came while no one listened, told to the first listener that comes (bounded: the
 * latest events are what matters, for a guest no one follows again).
 */
export class GuestListeners {
  private listeners: ((event: GuestEvent) => void)[] = [];
  private unheard: GuestEvent[] = [];

  add(listener: (event: GuestEvent) => void): void {
    this.listeners.push(listener);
    const unheard = this.unheard;
    this.unheard = [];
    for (const event of unheard) listener(event);
  }

  emit(event: GuestEvent): void {
    if (this.listeners.length === 0) {
      if (this.unheard.length === MAX_UNHEARD) this.unheard.shift();
      this.unheard.push(event);
    }
    for (const listener of [...this.listeners]) listener(event);
  }

  /** Forgets every listener (the guest ended, or whoever followed it is gone). */
  clear(): void {
    this.listeners = [];
  }
}
