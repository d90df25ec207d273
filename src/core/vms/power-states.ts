import type { PowerState, RuntimeFacts } from "../model/power-state";
import { vmClass, type VmClassName } from "../model/vm-classes";
import { vmNotHalted } from "./vm-errors";

interface Entry {
  state: PowerState;
  runtime: RuntimeFacts | undefined;
}

/**
 * The core's own table of the VMs' power states. The lifecycle writes it, from its own steps and
 * from what the hypervisor tells of the guests (and reconciles it with the VMs a driver finds
 * running at start); everything else only reads it. A VM it does not hold is Halted.
 */
export class PowerStates {
  private readonly entries = new Map<string, Entry>();

  /** The power state of a VM: the host itself is always Running, as Qubes reports it. */
  of(vm: { uuid: string; klass: VmClassName }): PowerState {
    if (vmClass(vm.klass).isHost) return "Running";
    return this.entries.get(vm.uuid)?.state ?? "Halted";
  }

  /** Refuses (VM_NOT_HALTED) what only a halted VM can be: `toBe` removed, renamed, cloned. */
  requireHalted(vm: { uuid: string; name: string; klass: VmClassName }, toBe: string): void {
    const state = this.of(vm);
    if (state !== "Halted") throw vmNotHalted(vm, state, toBe);
  }

  /** When the VM started; undefined while it does not run. */
  startedAt(uuid: string): Date | undefined {
    return this.entries.get(uuid)?.runtime?.startedAt;
  }

  /** What the hypervisor told of the VM when it started; undefined while it does not run. */
  runtime(uuid: string): RuntimeFacts | undefined {
    return this.entries.get(uuid)?.runtime;
  }

  /** Records a VM's state, and its runtime facts once it runs; Halted forgets it. */
  set(uuid: string, state: PowerState, runtime?: RuntimeFacts): void {
    if (state === "Halted") {
      this.entries.delete(uuid);
      return;
    }
    const entry = this.entries.get(uuid);
    if (entry) {
      entry.state = state;
      if (runtime) entry.runtime = runtime;
    } else this.entries.set(uuid, { state, runtime });
  }

  /** The VMs that are not halted, by uuid. */
  active(): string[] {
    return [...this.entries.keys()];
  }
}
