import type { GuestEvent, GuestStatus, Hypervisor, RunningVm } from "../../ports/hypervisor";
import type { Log } from "../../ports/log";
import type { Store } from "../../ports/store";
import type { PowerState } from "../model/power-state";
import type { VmRecord } from "../model/vm-record";
import { internalContext } from "../shared/call-context";
import type { VmOperations } from "../vms/vm-operations";
import type { VmParticipants } from "../vms/vm-participant";
import type { HaltWaiters } from "./halt-waiters";
import { capabilityMissing, vmNotRunning } from "./lifecycle-errors";
import type { PowerMachine } from "./power-machine";
import type { PowerTrigger } from "./power-transitions";

/** The optional capabilities a running guest may offer, by name. */
export type GuestCapability = "console" | "stats" | "hotPlug";

const STATE_OF_STATUS: Readonly<Record<GuestStatus, PowerState>> = {
  running: "Running",
  paused: "Paused",
  suspended: "Suspended",
  "shutting-down": "Halting",
};

const TRIGGER_OF_EVENT: Readonly<Record<GuestEvent["kind"], PowerTrigger>> = {
  stopped: "guest-stopped",
  resumed: "guest-resumed",
  suspended: "guest-suspended",
  woken: "guest-woken",
  shutdown: "guest-shutdown",
  reset: "guest-reset",
  panicked: "guest-panicked",
  exited: "guest-exited",
};

/**
 * The handles of the running VMs, and what their guests tell: each event moves the VM through
 * the transition table; when a guest exits, the VM is settled (its participants' afterHalt, as
 * an operation on it, so that nothing else acts on it meanwhile), then whoever waits for its
 * halt is answered.
 */
export class RunningVms {
  private readonly handles = new Map<string, RunningVm>();

  constructor(
    private readonly store: Store,
    private readonly machine: PowerMachine,
    private readonly operations: VmOperations,
    private readonly participants: VmParticipants,
    private readonly halts: HaltWaiters,
    private readonly log: Log,
  ) {}

  /** Takes over the VMs the hypervisor finds running, with their states as it tells them. */
  async adopt(hypervisor: Hypervisor): Promise<void> {
    for (const handle of await hypervisor.adopt()) {
      const vm = this.store.vms.byUuid(handle.uuid);
      if (!vm) {
        // Not one of ours (its VM was removed while Steward was down): left alone, and said.
        this.log.warn({ uuid: handle.uuid, pid: handle.pid }, "a running VM that Steward does not know: left as it is");
        continue;
      }
      this.machine.adopted(vm, STATE_OF_STATUS[handle.status()], handle.startedAt);
      this.attach(vm, handle);
      this.log.info({ vm: vm.name, pid: handle.pid, state: this.machine.state(vm) }, "adopted a running VM");
    }
  }

  /** Follows a guest that was just launched (or adopted). */
  attach(vm: VmRecord, handle: RunningVm): void {
    this.handles.set(vm.uuid, handle);
    handle.onEvent((event) => this.heard(vm.uuid, event));
  }

  /** The handle of a running VM; undefined while it does not run. */
  handle(uuid: string): RunningVm | undefined {
    return this.handles.get(uuid);
  }

  /**
   * A capability of a running VM's guest (its console, its stats…): VM_NOT_RUNNING while it
   * does not run, CAPABILITY_MISSING where the hypervisor does not offer it.
   */
  capability<C extends GuestCapability>(vm: VmRecord, name: C): NonNullable<RunningVm[C]> {
    const handle = this.handles.get(vm.uuid);
    if (!handle) throw vmNotRunning(vm, this.machine.state(vm));
    const capability = handle[name];
    if (!capability) throw capabilityMissing(vm, name);
    return capability;
  }

  private heard(uuid: string, event: GuestEvent): void {
    const vm = this.store.vms.byUuid(uuid);
    if (!vm) return;
    const detail = event.kind === "panicked" || event.kind === "exited" ? event.detail : undefined;
    if (detail) this.log.info({ vm: vm.name, event: event.kind, detail }, "the guest said");
    if (event.kind !== "exited") {
      this.machine.move(vm, TRIGGER_OF_EVENT[event.kind]);
      return;
    }
    this.handles.delete(uuid);
    this.halts.settlingStarted(uuid);
    this.machine.move(vm, "guest-exited");
    const ctx = internalContext(`settle ${vm.name}`);
    this.operations
      .onUuid(uuid, ctx, "settle it", (record) => record && this.participants.afterHalt(record, { cause: event.cause, detail: event.detail }, ctx))
      .catch((error: unknown) => this.log.error({ vm: vm.name, err: error }, "settling a halted VM failed"))
      .finally(() => this.halts.settled(uuid));
  }
}
