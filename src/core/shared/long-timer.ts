/** The longest timer Node sets: a longer one fires at once, with a warning. */
export const MAX_TIMER_MS = 2_147_483_647;

/** A timer that waits however long it is asked to (chained timers past Node's longest). */
export class LongTimer {
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly fire: () => void,
    delayMs: number,
  ) {
    this.arm(Math.max(0, delayMs));
  }

  cancel(): void {
    clearTimeout(this.timer);
  }

  private arm(remainingMs: number): void {
    this.timer = setTimeout(() => (remainingMs > MAX_TIMER_MS ? this.arm(remainingMs - MAX_TIMER_MS) : this.fire()), Math.min(remainingMs, MAX_TIMER_MS));
  }
}
