import type { Clock } from "../ports/clock";
import type { Hypervisor, PowerState } from "../ports/hypervisor";
import type { NewEvent, Store, VmRecord } from "../ports/store";
import { DomainError, failedPrecondition } from "./errors";
import type { PropertyResolver } from "./properties/property-resolver";
import { vmSpec } from "./properties/property-schema";
import type { VmLookup } from "./vm-lookup";
import type { VmRegistry } from "./vm-registry";

export interface ShutdownOptions {
  /** Kill the VM when it has not halted in time, and shut down the VMs using it as netvm. */
  force: boolean;
  /** Return only once the VM halted. */
  wait: boolean;
  /** How long to wait; undefined for the VM's shutdown_timeout. */
  timeoutMs: number | undefined;
}

/**
 * Starting and stopping VMs, with Qubes' power states and the transitions they allow. The
 * hypervisor port does the work; this keeps the rules, starts a VM's netvm chain first, and
 * tells each step as an event.
 */
export class VmLifecycle {
  private readonly haltWaiters = new Map<string, (() => void)[]>();

  constructor(
    private readonly store: Store,
    private readonly lookup: VmLookup,
    private readonly hypervisor: Hypervisor,
    private readonly resolver: PropertyResolver,
    private readonly registry: VmRegistry,
    private readonly clock: Clock,
  ) {
    hypervisor.onHalted((uuid) => this.halted(uuid));
  }

  async start(text: string): Promise<PowerState> {
    const vm = this.lookup.resolve(text);
    this.notAdmin(vm, "started");
    this.requireState(vm, ["Halted"], "start");
    if ((vm.klass === "AppVM" || vm.klass === "DispVM") && !this.resolver.templateOf(vm)) {
      throw failedPrecondition("NO_TEMPLATE", `${vm.name} has no template to start from`, { vm: vm.name });
    }
    await this.startNetvmOf(vm);
    this.tell(vm, "domain-pre-start", {});
    try {
      await this.hypervisor.start({
        uuid: vm.uuid,
        name: vm.name,
        memoryMib: this.resolver.vm(vm, vmSpec("memory")).value as number,
        vcpus: this.resolver.vm(vm, vmSpec("vcpus")).value as number,
        features: this.store.vms.features(vm.qid),
      });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.tell(vm, "domain-start-failed", { reason });
      if (error instanceof DomainError) throw error;
      throw new DomainError("unavailable", "START_FAILED", `${vm.name} failed to start: ${reason}`, { vm: vm.name });
    }
    this.tell(vm, "domain-start", {});
    return this.hypervisor.powerState(vm.uuid);
  }

  async shutdown(text: string, options: ShutdownOptions): Promise<PowerState> {
    const vm = this.lookup.resolve(text);
    this.notAdmin(vm, "shut down");
    const state = this.requireState(vm, ["Running", "Paused", "Halting"], "shut down");
    if (state !== "Halting") {
      await this.shutDownUsers(vm, options);
      if (state === "Paused") await this.hypervisor.unpause(vm.uuid);
      this.tell(vm, "domain-pre-shutdown", { force: options.force ? "True" : "False" });
      await this.hypervisor.shutdown(vm.uuid);
    }
    if (!options.wait) return this.hypervisor.powerState(vm.uuid);
    const timeoutMs = options.timeoutMs ?? 1000 * (this.resolver.vm(vm, vmSpec("shutdown_timeout")).value as number);
    if (await this.haltedWithin(vm, timeoutMs)) return "Halted";
    if (!options.force) {
      throw new DomainError("deadline-exceeded", "SHUTDOWN_TIMEOUT", `${vm.name} did not halt within ${timeoutMs / 1000} s; it is still running`, {
        vm: vm.name,
        timeout_ms: String(timeoutMs),
      });
    }
    await this.killAndWait(vm);
    return "Halted";
  }

  async kill(text: string): Promise<PowerState> {
    const vm = this.lookup.resolve(text);
    this.notAdmin(vm, "killed");
    this.requireState(vm, ["Transient", "Running", "Paused", "Suspended", "Halting", "Crashed", "Dying"], "kill");
    await this.killAndWait(vm);
    return "Halted";
  }

  async pause(text: string): Promise<PowerState> {
    return this.move(text, "Running", "pause", (uuid) => this.hypervisor.pause(uuid), "domain-paused");
  }

  async unpause(text: string): Promise<PowerState> {
    return this.move(text, "Paused", "unpause", (uuid) => this.hypervisor.unpause(uuid), "domain-unpaused");
  }

  async suspend(text: string): Promise<PowerState> {
    return this.move(text, "Running", "suspend", (uuid) => this.hypervisor.suspend(uuid), "domain-suspended");
  }

  async resume(text: string): Promise<PowerState> {
    return this.move(text, "Suspended", "resume", (uuid) => this.hypervisor.resume(uuid), "domain-resumed");
  }

  private async move(text: string, from: PowerState, action: string, act: (uuid: string) => Promise<void>, event: string): Promise<PowerState> {
    const vm = this.lookup.resolve(text);
    this.notAdmin(vm, `${action}d`);
    this.requireState(vm, [from], action);
    await act(vm.uuid);
    this.tell(vm, event, {});
    return this.hypervisor.powerState(vm.uuid);
  }

  /** Starts the netvm chain first, as Qubes does. */
  private async startNetvmOf(vm: VmRecord): Promise<void> {
    const netvm = this.resolver.netvmOf(vm);
    if (!netvm) return;
    const state = this.hypervisor.powerState(netvm.uuid);
    if (state === "Halted") await this.start(`uuid:${netvm.uuid}`);
    else if (state !== "Running") {
      throw failedPrecondition("NETVM_NOT_RUNNING", `${vm.name}'s netvm ${netvm.name} is ${state}`, { vm: vm.name, netvm: netvm.name, state });
    }
  }

  /** Running VMs whose netvm is this one: refused, or (with force) shut down first. */
  private async shutDownUsers(vm: VmRecord, options: ShutdownOptions): Promise<void> {
    const users = this.store.vms
      .all()
      .filter((other) => this.resolver.netvmOf(other)?.qid === vm.qid && this.hypervisor.powerState(other.uuid) !== "Halted");
    if (users.length === 0) return;
    if (!options.force) {
      const names = users.map((u) => u.name).join(", ");
      throw failedPrecondition("VM_IN_USE", `${vm.name} is the netvm of running ${names}; shut them down first, or use force`, { vm: vm.name, used_by: names });
    }
    for (const user of users) await this.shutdown(`uuid:${user.uuid}`, { ...options, wait: true });
  }

  private async killAndWait(vm: VmRecord): Promise<void> {
    const halted = this.haltedWithin(vm, 10_000);
    await this.hypervisor.kill(vm.uuid);
    if (!(await halted)) throw new DomainError("unavailable", "KILL_FAILED", `${vm.name} did not stop when killed`, { vm: vm.name });
  }

  private haltedWithin(vm: VmRecord, timeoutMs: number): Promise<boolean> {
    if (this.hypervisor.powerState(vm.uuid) === "Halted") return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiters = this.haltWaiters.get(vm.uuid) ?? [];
      const timer = setTimeout(() => {
        const list = this.haltWaiters.get(vm.uuid);
        if (list) list.splice(list.indexOf(done), 1);
        resolve(false);
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      waiters.push(done);
      this.haltWaiters.set(vm.uuid, waiters);
    });
  }

  private halted(uuid: string): void {
    const vm = this.store.vms.byUuid(uuid);
    if (vm) {
      this.tell(vm, "domain-shutdown", {});
      this.registry.cleanUpDisposable(uuid);
    }
    const waiters = this.haltWaiters.get(uuid) ?? [];
    this.haltWaiters.delete(uuid);
    for (const done of waiters) done();
  }

  private requireState(vm: VmRecord, allowed: readonly PowerState[], action: string): PowerState {
    const state = this.hypervisor.powerState(vm.uuid);
    if (!allowed.includes(state)) {
      throw failedPrecondition("VM_BAD_STATE", `cannot ${action} ${vm.name}: it is ${state}`, { vm: vm.name, state });
    }
    return state;
  }

  private notAdmin(vm: VmRecord, what: string): void {
    if (vm.klass === "AdminVM") throw failedPrecondition("VM_IS_ADMIN", `${vm.name} is the AdminVM and cannot be ${what}`, { vm: vm.name });
  }

  private tell(vm: VmRecord, name: string, kwargs: NewEvent["kwargs"]): void {
    this.store.transaction(() => this.store.events.append({ subject: vm.name, name, kwargs }, this.clock.now()));
  }
}
