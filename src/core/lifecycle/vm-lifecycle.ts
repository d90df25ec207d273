import type { Hypervisor, RunningVm } from "../../ports/hypervisor";
import type { Log } from "../../ports/log";
import type { Store } from "../../ports/store";
import { DomainError } from "../errors";
import type { LaunchPlan } from "../model/launch-plan";
import type { PowerState } from "../model/power-state";
import { vmClass } from "../model/vm-classes";
import type { VmRecord } from "../model/vm-record";
import { uncancellable, type CallContext } from "../shared/call-context";
import { Revert } from "../shared/revert";
import { netvmLoop } from "../vms/properties/property-errors";
import type { PropertyResolver } from "../vms/properties/property-resolver";
import { vmSpec } from "../vms/properties/property-schema";
import { netvmInUseByRunning, noTemplateToStart, vmIsAdmin } from "../vms/vm-errors";
import type { VmLookup } from "../vms/vm-lookup";
import type { VmOperations } from "../vms/vm-operations";
import type { VmParticipants } from "../vms/vm-participant";
import type { HaltWaiters } from "./halt-waiters";
import { killFailed, netvmNotRunning, shutdownTimeout, startFailed } from "./lifecycle-errors";
import type { PowerMachine } from "./power-machine";
import type { PowerAction } from "./power-transitions";
import type { RunningVms } from "./running-vms";

export interface ShutdownOptions {
  /** Kill the VM when it has not halted in time, and shut down the VMs using it as netvm. */
  force: boolean;
  /** Return only once the VM halted. */
  wait: boolean;
  /** How long to wait; undefined for the VM's shutdown_timeout. */
  timeoutMs: number | undefined;
}

/** How long a killed VM may take to halt. */
const KILL_TIMEOUT_MS = 10_000;
/** The longest netvm chain a start follows: far more than any real one (Qubes' have two or three). */
const MAX_NETVM_CHAIN = 64;

/**
 * Starting and stopping VMs, with Qubes' power states and the transitions the table allows.
 * Each step is an operation on the VM (one at a time); waiting for a VM to halt is not, so a
 * VM that is slow to shut down can still be killed. A kill also stops a start under way.
 */
export class VmLifecycle {
  /** The starts under way, by uuid: a kill aborts them. */
  private readonly launching = new Map<string, AbortController>();

  constructor(
    private readonly store: Store,
    private readonly lookup: VmLookup,
    private readonly hypervisor: Hypervisor,
    private readonly resolver: PropertyResolver,
    private readonly operations: VmOperations,
    private readonly participants: VmParticipants,
    private readonly machine: PowerMachine,
    private readonly running: RunningVms,
    private readonly halts: HaltWaiters,
    private readonly log: Log,
  ) {}

  /**
   * Starts a halted VM after its netvm chain, as Qubes does; resolves once it runs. The VM is
   * held from the start, so nothing removes or renames it while its netvms start.
   */
  async start(text: string, ctx: CallContext): Promise<PowerState> {
    const vm = this.lookup.resolve(text);
    this.requireStartable(vm, "started");
    this.machine.allow(vm, "start");
    this.requireTemplate(vm);
    return this.operations.on(text, "vm", ctx, "start it", async (record) => {
      this.machine.allow(record, "start");
      this.requireTemplate(record);
      await this.startNetvmChain(record, ctx);
      this.requireNetvmRunning(record);
      return this.launch(record, ctx);
    });
  }

  async shutdown(text: string, options: ShutdownOptions, ctx: CallContext): Promise<PowerState> {
    const vm = this.lookup.resolve(text);
    this.requireStartable(vm, "shut down");
    if (this.machine.allow(vm, "shutdown") !== "Halting" && options.force) await this.shutDownUsers(vm, options, ctx);
    // Once asked, the shutdown happens, even when the caller stops waiting for its turn.
    await this.operations.on(text, "vm", uncancellable(ctx), "shut it down", async (record) => {
      const state = this.machine.allow(record, "shutdown");
      if (state === "Halting") return;
      // Checked again in the VM's turn, with its state changed at once after: a VM that started
      // with this one as its netvm since is seen, and none can start while it halts.
      this.refuseRunningUsers(record);
      this.machine.move(record, "shutdown", { force: options.force });
      const handle = this.running.handle(record.uuid)!;
      // A paused guest cannot hear the power button.
      if (state === "Paused") await handle.unpause();
      await handle.powerButton();
    });
    if (!options.wait) return this.machine.state(vm);
    const timeoutMs = options.timeoutMs ?? 1000 * (this.resolver.vm(vm, vmSpec("shutdown_timeout")).value as number);
    if (await this.halted(vm, timeoutMs, ctx, `waiting for ${vm.name} to shut down`)) return "Halted";
    if (!options.force) throw shutdownTimeout(vm, timeoutMs);
    await this.killNow(vm, ctx);
    return "Halted";
  }

  async kill(text: string, ctx: CallContext): Promise<PowerState> {
    const vm = this.lookup.resolve(text);
    this.requireStartable(vm, "killed");
    this.machine.allow(vm, "kill");
    await this.killNow(vm, ctx);
    return "Halted";
  }

  pause(text: string, ctx: CallContext): Promise<PowerState> {
    return this.act(text, "pause", "paused", ctx, (handle) => handle.pause());
  }

  unpause(text: string, ctx: CallContext): Promise<PowerState> {
    return this.act(text, "unpause", "unpaused", ctx, (handle) => handle.unpause());
  }

  suspend(text: string, ctx: CallContext): Promise<PowerState> {
    return this.act(text, "suspend", "suspended", ctx, (handle) => handle.suspend());
  }

  resume(text: string, ctx: CallContext): Promise<PowerState> {
    return this.act(text, "resume", "resumed", ctx, (handle) => handle.resume());
  }

  /** The plan a VM starts from, then its participants' part of it, then the launch itself. */
  private async launch(vm: VmRecord, ctx: CallContext): Promise<PowerState> {
    this.machine.move(vm, "start");
    const abort = new AbortController();
    this.launching.set(vm.uuid, abort);
    let handle: RunningVm;
    try {
      handle = await Revert.run(
        async (revert) => {
          const plan = this.planOf(vm);
          await this.participants.beforeStart(vm, plan, ctx, revert);
          return this.hypervisor.launch(plan, abort.signal);
        },
        this.participants.undoFailed(vm.name, `starting ${vm.name}`),
      );
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.machine.move(vm, "launch-failed", { reason });
      this.halts.settled(vm.uuid);
      if (error instanceof DomainError) throw error;
      throw startFailed(vm, reason);
    } finally {
      this.launching.delete(vm.uuid);
    }
    this.running.attach(vm, handle);
    this.machine.move(vm, "launched", {}, handle.startedAt);
    return this.machine.state(vm);
  }

  private planOf(vm: VmRecord): LaunchPlan {
    const value = (name: string) => this.resolver.vm(vm, vmSpec(name)).value;
    return {
      uuid: vm.uuid,
      name: vm.name,
      qid: vm.qid,
      memoryMib: value("memory") as number,
      maxmemMib: value("maxmem") as number,
      vcpus: value("vcpus") as number,
      kernel: value("kernel") as string,
      kernelopts: value("kernelopts") as string,
      features: this.store.vms.features(vm.qid),
      disks: [],
      networkInterfaces: [],
      devices: [],
    };
  }

  /**
   * Kills the VM and waits until it halted. A start under way is aborted at once (the VM is
   * Dying until the start gives up), rather than waiting for its turn.
   */
  private async killNow(vm: VmRecord, ctx: CallContext): Promise<void> {
    const launch = this.launching.get(vm.uuid);
    if (launch) {
      this.machine.move(vm, "kill");
      launch.abort();
    }
    await this.operations.on(`uuid:${vm.uuid}`, "vm", ctx, "kill it", async (record) => {
      if (this.machine.state(record) === "Halted") return;
      this.machine.move(record, "kill");
      await this.running.handle(record.uuid)?.kill();
    });
    if (!(await this.halted(vm, KILL_TIMEOUT_MS, ctx, `waiting for ${vm.name} to die`))) throw killFailed(vm);
  }

  private async act(text: string, action: PowerAction, done: string, ctx: CallContext, act: (handle: RunningVm) => Promise<void>): Promise<PowerState> {
    const vm = this.lookup.resolve(text);
    this.requireStartable(vm, done);
    this.machine.allow(vm, action);
    return this.operations.on(text, "vm", ctx, `${action} it`, async (record) => {
      this.machine.allow(record, action);
      await act(this.running.handle(record.uuid)!);
      // The guest may have told the change already (its event came first): then this adds nothing.
      this.machine.move(record, action);
      return this.machine.state(record);
    });
  }

  /**
   * Starts the netvms the VM's network goes through, the farthest first, each as an operation
   * of its own. The chain is walked with a bound, so that no data can make a start recurse
   * without end; a chain that comes back on itself is refused (NETVM_LOOP) before anything
   * starts.
   */
  private async startNetvmChain(vm: VmRecord, ctx: CallContext): Promise<void> {
    const chain: VmRecord[] = [];
    for (let hop = this.resolver.netvmOf(vm); hop; hop = this.resolver.netvmOf(hop)) {
      if (hop.qid === vm.qid || chain.some((seen) => seen.qid === hop.qid) || chain.length === MAX_NETVM_CHAIN) {
        throw netvmLoop(vm.name, chain[0]?.name ?? hop.name, [vm, ...chain, hop].map((link) => link.name));
      }
      chain.push(hop);
    }
    for (const netvm of chain.reverse()) await this.ensureRunning(vm, netvm, ctx);
  }

  /**
   * Starts a netvm of `user`'s chain unless it runs already, in its own turn: two VMs that share
   * a netvm start side by side, and the second finds it running. Its own netvm started just
   * before it (the farthest first).
   */
  private ensureRunning(user: VmRecord, netvm: VmRecord, ctx: CallContext): Promise<void> {
    return this.operations.on(`uuid:${netvm.uuid}`, "vm", ctx, "start it", async (record) => {
      const state = this.machine.state(record);
      if (state === "Running") return;
      if (state !== "Halted") throw netvmNotRunning(user, record, state);
      this.requireTemplate(record);
      this.requireNetvmRunning(record);
      await this.launch(record, ctx);
    });
  }

  private requireNetvmRunning(vm: VmRecord): void {
    const netvm = this.resolver.netvmOf(vm);
    if (!netvm) return;
    const state = this.machine.state(netvm);
    if (state !== "Running") throw netvmNotRunning(vm, netvm, state);
  }

  /** With force, the running VMs whose netvm is this one are shut down first. */
  private async shutDownUsers(vm: VmRecord, options: ShutdownOptions, ctx: CallContext): Promise<void> {
    for (const user of this.runningUsers(vm)) await this.shutdown(`uuid:${user.uuid}`, { ...options, wait: true }, ctx);
  }

  /** A VM that running VMs use as their netvm is not shut down (VM_IN_USE). */
  private refuseRunningUsers(vm: VmRecord): void {
    const users = this.runningUsers(vm);
    if (users.length > 0) throw netvmInUseByRunning(vm, users.map((u) => u.name));
  }

  private runningUsers(vm: VmRecord): VmRecord[] {
    return this.store.vms.all().filter((other) => this.resolver.netvmOf(other)?.qid === vm.qid && this.machine.state(other) !== "Halted");
  }

  /** Waits until the VM halted and settled; a caller that stops waiting is CANCELLED, and logged. */
  private async halted(vm: VmRecord, timeoutMs: number, ctx: CallContext, what: string): Promise<boolean> {
    try {
      return await this.halts.wait(vm.uuid, () => this.machine.state(vm) === "Halted", timeoutMs, ctx.signal, what);
    } catch (error) {
      this.log.info({ vm: vm.name, requestId: ctx.requestId, caller: ctx.caller }, `the caller stopped ${what}; it goes on`);
      throw error;
    }
  }

  private requireTemplate(vm: VmRecord): void {
    if (vmClass(vm.klass).templateClass && !this.resolver.templateOf(vm)) throw noTemplateToStart(vm);
  }

  private requireStartable(vm: VmRecord, what: string): void {
    if (!vmClass(vm.klass).startable) throw vmIsAdmin(vm, what);
  }
}
