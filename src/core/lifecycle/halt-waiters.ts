import { callCancelled } from "../errors";

/**
 * Callers waiting for VMs to halt (ShutdownVm with wait, KillVm). A VM counts as halted once it
 * is Halted and settled: its participants have done what a halt asks of them (afterHalt), so
 * that whoever was waiting finds it as a halted VM should be.
 */
export class HaltWaiters {
  private readonly waiting = new Map<string, Set<() => void>>();
  private readonly settling = new Set<string>();

  /** The VM halted and its settling began; waiters are told once settled() is called. */
  settlingStarted(uuid: string): void {
    this.settling.add(uuid);
  }

  /** The VM is halted and settled (or a start that failed has been undone): wake its waiters. */
  settled(uuid: string): void {
    this.settling.delete(uuid);
    const waiters = this.waiting.get(uuid);
    this.waiting.delete(uuid);
    for (const wake of waiters ?? []) wake();
  }

  /**
   * Resolves true once the VM is halted and settled, false after `timeoutMs`; rejects with
   * CANCELLED when `signal` aborts first (what the caller waited for goes on).
   */
  wait(uuid: string, isHalted: () => boolean, timeoutMs: number, signal: AbortSignal, what: string): Promise<boolean> {
    if (isHalted() && !this.settling.has(uuid)) return Promise.resolve(true);
    if (signal.aborted) return Promise.reject(callCancelled(what));
    return new Promise<boolean>((resolve, reject) => {
      const end = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", cancel);
        this.waiting.get(uuid)?.delete(wake);
      };
      const wake = () => {
        end();
        resolve(true);
      };
      const timer = setTimeout(() => {
        end();
        resolve(false);
      }, timeoutMs);
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
