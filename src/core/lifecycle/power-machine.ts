import type { EventLog } from "../events/event-log";
import type { PowerState, RuntimeFacts } from "../model/power-state";
import { vmClass } from "../model/vm-classes";
import { vmIsAdmin } from "../vms/vm-errors";
import type { VmRecord } from "../model/vm-record";
import type { PowerStates } from "../vms/power-states";
import { domainShutdown } from "./lifecycle-events";
import { vmBadState } from "./lifecycle-errors";
import { ACTION_DONE, ACTION_VERB, transitionFrom, type PowerAction, type PowerTrigger, type TransitionDetail } from "./power-transitions";

/** Moves VMs through the transition table: the one writer of the power-state table. */
export class PowerMachine {
  constructor(
    private readonly powerStates: PowerStates,
    private readonly events: EventLog,
  ) {}

  state(vm: VmRecord): PowerState {
    return this.powerStates.of(vm);
  }

  /**
   * The VM's state, when `action` is allowed from it; VM_IS_ADMIN for a class that has no power
   * states of its own (the host), VM_BAD_STATE for a state the table does not take it from.
   */
  allow(vm: VmRecord, action: PowerAction): PowerState {
    if (!vmClass(vm.klass).startable) throw vmIsAdmin(vm, ACTION_DONE[action]);
    const state = this.powerStates.of(vm);
    if (!transitionFrom(state, action)) throw vmBadState(vm, ACTION_VERB[action], state);
    return state;
  }

  /**
   * Moves the VM as the table says for `trigger`, and tells the transition's events; false
   * (and nothing changes) when no row takes the trigger from the VM's state.
   */
  move(vm: VmRecord, trigger: PowerTrigger, detail: TransitionDetail = {}, runtime?: RuntimeFacts): boolean {
    const row = transitionFrom(this.powerStates.of(vm), trigger);
    if (!row) return false;
    this.powerStates.set(vm.uuid, row.to, runtime);
    if (row.tells.length > 0) this.events.append(...row.tells.map((tell) => tell(vm, detail)));
    return true;
  }

  /** Tells of a VM that ran when the last Steward stopped and ended before this one started. */
  endedUnseen(vm: VmRecord): void {
    this.events.append(domainShutdown(vm, { cause: "crashed", detail: "it ended while no Steward ran" }));
  }

  /** Records the state of a VM found running at start, as its driver says it is. */
  adopted(vm: VmRecord, state: PowerState, runtime: RuntimeFacts): void {
    this.powerStates.set(vm.uuid, state, runtime);
  }
}
