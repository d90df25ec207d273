import type { RuntimeFacts } from "../model/power-state";
import type { GuestEvent, GuestStatus, Hypervisor, RunningVm } from "../../ports/hypervisor";
import type { Log } from "../../ports/log";
import type { Store } from "../../ports/store";
import type { HaltCause, PowerState } from "../model/power-state";
import type { VmRecord } from "../model/vm-record";
import { internalContext } from "../shared/call-context";
import type { VmOperations } from "../vms/vm-operations";
import type { VmParticipants } from "../vms/vm-participant";
import type { HaltWaiters } from "./halt-waiters";
import { capabilityMissing, vmBadState } from "./lifecycle-errors";
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
 * the next operation on it, so that nothing else acts on it before), then whoever waits for its
 * halt is answered. Which VMs run is kept in the store too (a mark from launch to settled), so
 * that a Steward starting again settles the VMs that ended while none ran.
 */
export class RunningVms {
  private readonly handles = new Map<string, RunningVm>();
  /** The starts under way, by uuid: a kill aborts them. */
  private readonly launches = new Map<string, AbortController>();

  constructor(
    private readonly store: Store,
    private readonly machine: PowerMachine,
    private readonly operations: VmOperations,
    private readonly participants: VmParticipants,
    private readonly halts: HaltWaiters,
    private readonly log: Log,
  ) {}

  /**
   * Takes over the VMs the hypervisor finds running, with their states as it tells them; then
   * settles the VMs that were running when the last Steward stopped and run no more.
   */
  async adopt(hypervisor: Hypervisor): Promise<void> {
    const handles = await hypervisor.adopt();
    for (const handle of handles) {
      const vm = this.store.vms.byUuid(handle.uuid);
      if (!vm) {
        // Not one of ours (its VM was removed while Steward was down): left alone, and said.
        this.log.warn({ uuid: handle.uuid, pid: handle.pid }, "a running VM that Steward does not know: left as it is");
        continue;
      }
      this.machine.adopted(vm, STATE_OF_STATUS[handle.status()], runtimeFacts(handle));
      this.attach(vm, handle);
      this.log.info({ vm: vm.name, pid: handle.pid, state: this.machine.state(vm) }, "adopted a running VM");
    }
    const adopted = new Set(handles.map((handle) => handle.uuid));
    for (const mark of this.store.runtime.running()) {
      const vm = this.store.vms.byQid(mark.qid);
      if (!vm || adopted.has(vm.uuid)) continue;
      if (mark.settling) {
        // It halted, and the last Steward stopped before it was settled: settled now.
        this.log.warn({ vm: vm.name }, "a VM that halted was not settled when the last Steward stopped: settling it");
        await this.settle(vm, "crashed", "the last Steward stopped before it was settled");
        continue;
      }
      this.log.warn({ vm: vm.name }, "a VM that ran ended while no Steward ran: settling it");
      this.store.transaction(() => {
        this.machine.endedUnseen(vm);
        this.store.runtime.markSettling(vm.qid);
      });
      await this.settle(vm, "crashed", "it ended while no Steward ran");
    }
  }

  /** Follows a guest that was just launched (or adopted). */
  attach(vm: VmRecord, handle: RunningVm): void {
    this.handles.set(vm.uuid, handle);
    try {
      this.store.transaction(() => this.store.runtime.markRunning(vm.qid, handle.startedAt));
    } catch (error) {
      // The guest runs and is followed all the same; only a restart would not know of it.
      this.log.error({ vm: vm.name, err: error }, "could not note that a VM runs");
    }
    handle.onEvent((event) => this.heard(vm.uuid, event));
  }

  /** A start of the VM begins: the signal its launch takes, which a kill aborts. */
  launching(uuid: string): AbortSignal {
    const abort = new AbortController();
    this.launches.set(uuid, abort);
    return abort.signal;
  }

  /** The start ended, launched or not. */
  launched(uuid: string): void {
    this.launches.delete(uuid);
  }

  /** Aborts the start of the VM under way; false when none is. */
  abortLaunch(uuid: string): boolean {
    const abort = this.launches.get(uuid);
    abort?.abort();
    return abort !== undefined;
  }

  /** The uuids of the VMs that run (a handle each). */
  uuids(): string[] {
    return [...this.handles.keys()];
  }

  /** The handle of a running VM; undefined while it does not run. */
  handle(uuid: string): RunningVm | undefined {
    return this.handles.get(uuid);
  }

  /**
   * A capability of a running VM's guest (its console, its stats…): VM_BAD_STATE while it does
   * not run (as GetVmStats and Console answer), CAPABILITY_MISSING where the hypervisor does
   * not offer it.
   */
  capability<C extends GuestCapability>(vm: VmRecord, name: C): NonNullable<RunningVm[C]> {
    const handle = this.handles.get(vm.uuid);
    // The AdminVM is the host itself: it runs, but no hypervisor runs it.
    if (!handle && vm.klass === "AdminVM") throw capabilityMissing(vm, name);
    if (!handle) throw vmBadState(vm, `use the ${name} of`, this.machine.state(vm));
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
    // The halt, its event and the mark that it waits to be settled: one transaction.
    this.store.transaction(() => {
      // A crash passes through Crashed, whether the guest said it panicked or its process just died.
      if (event.cause === "crashed") this.machine.move(vm, "guest-crashed");
      this.machine.move(vm, "guest-exited", { halt: { cause: event.cause, detail: event.detail } });
      this.store.runtime.markSettling(vm.qid);
    });
    this.halts.halted(uuid);
    void this.settle(vm, event.cause, event.detail);
  }

  /**
   * Settles a halted VM, as the next operation on it: its participants' afterHalt, then the
   * running mark goes. A Steward that dies meanwhile settles it again when it starts.
   */
  private settle(vm: VmRecord, cause: HaltCause, detail: string): Promise<void> {
    const ctx = internalContext(`settle ${vm.name}`);
    return this.operations
      .next(vm.uuid, "settle it", async (record) => {
        if (record) await this.participants.afterHalt(record, { cause, detail }, ctx);
        // Unless settling removed it (a DispVM): its mark went with it, and its qid may be another's by now.
        if (this.store.vms.byUuid(vm.uuid)) this.store.transaction(() => this.store.runtime.markHalted(vm.qid));
      })
      .catch((error: unknown) => this.log.error({ vm: vm.name, err: error }, "settling a halted VM failed"))
      .finally(() => this.halts.settled(vm.uuid));
  }
}

/** The runtime facts of a running VM, as its handle tells them. */
export function runtimeFacts(handle: RunningVm): RuntimeFacts {
  return { startedAt: handle.startedAt, pid: handle.pid, vsockCid: handle.vsockCid ?? 0, interfaces: handle.interfaces ?? [] };
}
