import { DomainError } from "../../../core/errors";
import type { Hypervisor, HypervisorInfo, PowerState, StartSpec } from "../../../ports/hypervisor";

/** The simulated guest takes this long to shut down unless its sim-shutdown-ms feature says otherwise. */
const DEFAULT_SHUTDOWN_MS = 20;

interface SimVm {
  state: PowerState;
  startTime: Date;
  /** How long the guest takes to honour a shutdown; undefined: it never does. */
  shutdownMs: number | undefined;
  shutdownTimer?: NodeJS.Timeout;
}

/**
 * The simulated hypervisor: the same power states and transitions as a real one, but no guest
 * code runs. It exists for fast tests and for hosts without QEMU, and says so in GetHostInfo.
 * A VM's features tune the simulated guest: sim-start-ms (how long it boots), sim-shutdown-ms
 * (how long a shutdown takes, or "never"), sim-start-fails (starting fails).
 */
export class SimHypervisor implements Hypervisor {
  private readonly vms = new Map<string, SimVm>();
  private readonly haltedListeners: ((uuid: string) => void)[] = [];

  info(): HypervisorInfo {
    return { kind: "sim", version: "", capabilities: [] };
  }

  powerState(uuid: string): PowerState {
    return this.vms.get(uuid)?.state ?? "Halted";
  }

  startTime(uuid: string): Date | undefined {
    return this.vms.get(uuid)?.startTime;
  }

  async start(spec: StartSpec): Promise<void> {
    if (this.vms.has(spec.uuid)) throw new DomainError("failed-precondition", "VM_BAD_STATE", `${spec.name} is already running`);
    const shutdown = spec.features["sim-shutdown-ms"];
    const vm: SimVm = { state: "Transient", startTime: new Date(), shutdownMs: shutdown === "never" ? undefined : Number(shutdown ?? DEFAULT_SHUTDOWN_MS) };
    this.vms.set(spec.uuid, vm);
    const bootMs = Number(spec.features["sim-start-ms"] ?? 0);
    await new Promise((resolve) => (bootMs > 0 ? setTimeout(resolve, bootMs) : setImmediate(resolve)));
    if (this.vms.get(spec.uuid) !== vm) {
      // Killed (or halted) while it booted: the start did not happen.
      throw new DomainError("aborted", "START_ABORTED", `${spec.name} was stopped while it started`, { vm: spec.name });
    }
    if (spec.features["sim-start-fails"]) {
      this.vms.delete(spec.uuid);
      throw new Error(`the simulated guest of ${spec.name} failed to boot`);
    }
    vm.state = "Running";
  }

  async shutdown(uuid: string): Promise<void> {
    const vm = this.vms.get(uuid);
    if (!vm || vm.state === "Halting") return;
    vm.state = "Halting";
    if (vm.shutdownMs !== undefined) vm.shutdownTimer = setTimeout(() => this.halt(uuid), vm.shutdownMs);
  }

  async kill(uuid: string): Promise<void> {
    if (this.vms.has(uuid)) this.halt(uuid);
  }

  async pause(uuid: string): Promise<void> {
    this.move(uuid, "Paused");
  }

  async unpause(uuid: string): Promise<void> {
    this.move(uuid, "Running");
  }

  async suspend(uuid: string): Promise<void> {
    this.move(uuid, "Suspended");
  }

  async resume(uuid: string): Promise<void> {
    this.move(uuid, "Running");
  }

  onHalted(listener: (uuid: string) => void): void {
    this.haltedListeners.push(listener);
  }

  private move(uuid: string, state: PowerState): void {
    const vm = this.vms.get(uuid);
    if (vm) vm.state = state;
  }

  private halt(uuid: string): void {
    const vm = this.vms.get(uuid);
    if (!vm) return;
    clearTimeout(vm.shutdownTimer);
    this.vms.delete(uuid);
    for (const listener of this.haltedListeners) listener(uuid);
  }
}
