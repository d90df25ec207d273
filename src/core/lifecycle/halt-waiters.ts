import { callCancelled } from "../errors";
import { LongTimer } from "../shared/long-timer";

/**
 * Callers waiting for VMs to halt (ShutdownVm with wait, KillVm), in two steps: until the VM is
 * Halted (what a timeout measures), then until it is settled — its participants have done what a
 * halt asks of them (afterHalt) — so that whoever waited finds it as a halted VM should be.
 */
export class HaltWaiters {
  private readonly haltWaiters = new Waiters();
  private readonly settleWaiters = new Waiters();
  private readonly settling = new Set<string>();

  /** The VM halted, and its settling begins. */
  halted(uuid: string): void {
    this.settling.add(uuid);
    this.haltWaiters.wake(uuid);
  }

  /** The VM is settled (or a start that failed has been undone). */
  settled(uuid: string): void {
    this.settling.delete(uuid);
    this.haltWaiters.wake(uuid);
    this.settleWaiters.wake(uuid);
  }

  /**
   * Resolves true once the VM halted within `timeoutMs` and then settled (however long that
   * takes), false when it did not halt in time; rejects with CANCELLED when `signal` aborts
   * first (what the caller waited for goes on).
   */
  async wait(uuid: string, isHalted: () => boolean, timeoutMs: number, signal: AbortSignal, what: string): Promise<boolean> {
    if (!(await this.haltedWithin(uuid, isHalted, timeoutMs, signal, what))) return false;
    if (this.settling.has(uuid)) await this.settleWaiters.wait(uuid, undefined, signal, what);
    return true;
  }

  /** True once the VM is Halted (settled or not), false after `timeoutMs`. */
  async haltedWithin(uuid: string, isHalted: () => boolean, timeoutMs: number, signal: AbortSignal, what: string): Promise<boolean> {
    return isHalted() || this.haltWaiters.wait(uuid, timeoutMs, signal, what);
  }
}

/** Callers waiting for something to happen to a VM, by uuid. */
class Waiters {
  private readonly waiting = new Map<string, Set<() => void>>();

  wake(uuid: string): void {
    const waiters = this.waiting.get(uuid);
    this.waiting.delete(uuid);
    for (const wake of waiters ?? []) wake();
  }

  /** True once woken; false after `timeoutMs` (never, when undefined); CANCELLED when `signal` aborts. */
  wait(uuid: string, timeoutMs: number | undefined, signal: AbortSignal, what: string): Promise<boolean> {
    if (signal.aborted) return Promise.reject(callCancelled(what));
    return new Promise<boolean>((resolve, reject) => {
      const end = () => {
        timer?.cancel();
        signal.removeEventListener("abort", cancel);
        const waiters = this.waiting.get(uuid);
        waiters?.delete(wake);
        if (waiters?.size === 0) this.waiting.delete(uuid);
      };
      const wake = () => {
        end();
        resolve(true);
      };
      const timer = timeoutMs === undefined ? undefined : new LongTimer(() => (end(), resolve(false)), timeoutMs);
      const cancel = () => {
        end();
        reject(callCancelled(what));
      };
      signal.addEventListener("abort", cancel, { once: true });
      let waiters = this.waiting.get(uuid);
      if (!waiters) this.waiting.set(uuid, (waiters = new Set()));
      waiters.add(wake);
    });
  }
}
