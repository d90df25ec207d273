import type { KillWho } from "../../ports/hypervisor";
import type { Log } from "../../ports/log";
import type { Store } from "../../ports/store";
import type { PowerState } from "../model/power-state";
import type { VmRecord } from "../model/vm-record";
import { uncancellable, type CallContext } from "../shared/call-context";
import type { PropertyResolver } from "../vms/properties/property-resolver";
import { netvmLoop } from "../vms/properties/property-errors";
import { vmSpec } from "../vms/properties/property-schema";
import { netvmInUseByRunning } from "../vms/vm-errors";
import type { VmLookup } from "../vms/vm-lookup";
import type { VmOperations } from "../vms/vm-operations";
import type { HaltWaiters } from "./halt-waiters";
import { capabilityMissing, invalidSignal, killFailed, shutdownTimeout } from "./lifecycle-errors";
import type { PowerMachine } from "./power-machine";
import type { RunningVms } from "./running-vms";

export interface ShutdownOptions {
  /** Kill the VM when it has not halted in time, and shut down the VMs using it as netvm. */
  force: boolean;
  /** Return only once the VM halted. */
  wait: boolean;
  /** How long to wait; undefined for the VM's shutdown_timeout. */
  timeoutMs: number | undefined;
}

export interface KillOptions {
  /** A Linux signal number, 1 to 64; 0 for SIGKILL. */
  signal: number;
  who: KillWho;
}

const SIGKILL = 9;
const MAX_SIGNAL = 64;

/** How long a killed VM may take to halt. */
const KILL_TIMEOUT_MS = 10_000;

/**
 * Shutting VMs down and killing them. Asking is an operation on the VM; waiting for it to halt
 * is not, so a VM that is slow to shut down can still be killed, and a kill stops a start under
 * way rather than waiting for its turn.
 */
export class VmStop {
  private readonly forcedKills = new Set<AbortController>();

  constructor(
    private readonly store: Store,
    private readonly lookup: VmLookup,
    private readonly resolver: PropertyResolver,
    private readonly operations: VmOperations,
    private readonly machine: PowerMachine,
    private readonly running: RunningVms,
    private readonly halts: HaltWaiters,
    private readonly log: Log,
  ) {}

  shutdown(text: string, options: ShutdownOptions, ctx: CallContext): Promise<PowerState> {
    return this.shutdownVia(text, options, ctx, []);
  }

  /** A shutdown, asked by the forced shutdowns of the VMs `via` (those whose netvm this is). */
  private async shutdownVia(text: string, options: ShutdownOptions, ctx: CallContext, via: readonly VmRecord[]): Promise<PowerState> {
    const vm = this.lookup.resolve(text);
    if (this.machine.allow(vm, "shutdown") !== "Halting" && options.force) await this.shutDownUsers(vm, options, ctx, via);
    // Once its turn is asked for, the shutdown happens, even when the caller stops waiting.
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
    const timeoutMs = options.timeoutMs ?? 1000 * (this.resolver.vm(vm, vmSpec("shutdown_timeout")).value as number);
    const forcedKill = options.force ? this.killAfter(vm, timeoutMs, ctx) : undefined;
    if (!options.wait) return this.machine.state(vm);
    if (await this.halted(vm, timeoutMs, ctx, `waiting for ${vm.name} to shut down`)) return "Halted";
    if (!forcedKill) throw shutdownTimeout(vm, timeoutMs);
    await forcedKill;
    if (!(await this.halted(vm, KILL_TIMEOUT_MS, ctx, `waiting for ${vm.name} to die`))) throw killFailed(vm);
    return "Halted";
  }

  /**
   * A forced shutdown kills the VM once `timeoutMs` passed without it halting, whether the caller
   * waits for it or not (nor stops waiting). Runs on its own; release() calls off those pending.
   */
  private killAfter(vm: VmRecord, timeoutMs: number, ctx: CallContext): Promise<void> {
    const calledOff = new AbortController();
    this.forcedKills.add(calledOff);
    const own: CallContext = { caller: ctx.caller, requestId: ctx.requestId, signal: calledOff.signal };
    const isHalted = () => this.machine.state(vm) === "Halted";
    const killed = (async () => {
      if (await this.halts.haltedWithin(vm.uuid, isHalted, timeoutMs, calledOff.signal, `waiting for ${vm.name} to shut down`)) return;
      this.log.info({ vm: vm.name, requestId: ctx.requestId, caller: ctx.caller, timeoutMs }, "a forced shutdown timed out: killing the VM");
      await this.killNow(vm, own);
    })().finally(() => this.forcedKills.delete(calledOff));
    // Whoever waits sees a failure; with no one waiting, it is logged.
    killed.catch((error: unknown) => {
      if (!calledOff.signal.aborted) this.log.warn({ vm: vm.name, requestId: ctx.requestId, err: error }, "a forced shutdown could not kill the VM");
    });
    return killed;
  }

  /** Calls off the kills forced shutdowns have pending: the server stops, and leaves its VMs be. */
  release(): void {
    for (const pending of this.forcedKills) pending.abort();
  }

  /**
   * Kills the VM (SIGKILL, the default) and waits until it halted; or sends its processes
   * another signal and returns the state it is in then.
   */
  async kill(text: string, ctx: CallContext, options: KillOptions = { signal: SIGKILL, who: "all" }): Promise<PowerState> {
    const signal = options.signal === 0 ? SIGKILL : options.signal;
    if (!Number.isInteger(signal) || signal < 1 || signal > MAX_SIGNAL) throw invalidSignal(options.signal);
    const vm = this.lookup.resolve(text);
    this.machine.allow(vm, "kill");
    if (signal !== SIGKILL) return this.signal(vm, signal, options.who, ctx);
    await this.killNow(vm, ctx);
    return "Halted";
  }

  private signal(vm: VmRecord, signal: number, who: KillWho, ctx: CallContext): Promise<PowerState> {
    return this.operations.on(`uuid:${vm.uuid}`, "vm", ctx, `signal it (${signal})`, async (record) => {
      this.machine.allow(record, "kill");
      const handle = this.running.handle(record.uuid);
      if (!handle?.signal) throw capabilityMissing(record, "signals but SIGKILL");
      await handle.signal(signal, who);
      return this.machine.state(record);
    });
  }

  /**
   * Kills the VM and waits until it halted. A start under way is aborted at once (the VM is
   * Dying until the start gives up), rather than waiting for its turn.
   */
  private async killNow(vm: VmRecord, ctx: CallContext): Promise<void> {
    if (this.machine.state(vm) === "Transient" && this.running.abortLaunch(vm.uuid)) this.machine.move(vm, "kill");
    await this.operations.on(`uuid:${vm.uuid}`, "vm", ctx, "kill it", async (record) => {
      if (this.machine.state(record) === "Halted") return;
      this.machine.move(record, "kill");
      await this.running.handle(record.uuid)?.kill();
      // The kill's turn lasts until the VM is Halted, whenever its driver says so: the operation
      // after it (its settling first) finds it halted.
      const isHalted = () => this.machine.state(record) === "Halted";
      if (!(await this.halts.haltedWithin(record.uuid, isHalted, KILL_TIMEOUT_MS, uncancellable(ctx).signal, `killing ${record.name}`))) throw killFailed(record);
    });
    if (!(await this.halted(vm, KILL_TIMEOUT_MS, ctx, `waiting for ${vm.name} to die`))) throw killFailed(vm);
  }

  /**
   * With force, the running VMs whose netvm is this one are shut down first (theirs first, and
   * so on). A chain of users that comes back to a VM is refused (NETVM_LOOP), not followed.
   */
  private async shutDownUsers(vm: VmRecord, options: ShutdownOptions, ctx: CallContext, via: readonly VmRecord[]): Promise<void> {
    const chain = [...via, vm];
    for (const user of this.runningUsers(vm)) {
      if (chain.some((link) => link.qid === user.qid)) throw netvmLoop(user.name, vm.name, [...chain, user].map((link) => link.name));
      await this.shutdownVia(`uuid:${user.uuid}`, { ...options, wait: true }, ctx, chain);
    }
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
}
