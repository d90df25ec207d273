import type { Hypervisor, RunningVm } from "../../ports/hypervisor";
import type { Store } from "../../ports/store";
import { DomainError } from "../errors";
import type { LaunchPlan } from "../model/launch-plan";
import type { PowerState } from "../model/power-state";
import { vmClass } from "../model/vm-classes";
import type { VmRecord } from "../model/vm-record";
import type { CallContext } from "../shared/call-context";
import { Revert } from "../shared/revert";
import { netvmLoop } from "../vms/properties/property-errors";
import type { PropertyResolver } from "../vms/properties/property-resolver";
import { vmSpec } from "../vms/properties/property-schema";
import { requireMemoryWithinMaxmem, servesDispvms } from "../vms/properties/property-checks";
import { notADispvmTemplate, noTemplateToStart } from "../vms/vm-errors";
import type { VmLookup } from "../vms/vm-lookup";
import type { VmOperations } from "../vms/vm-operations";
import type { VmParticipants } from "../vms/vm-participant";
import type { HaltWaiters } from "./halt-waiters";
import { netvmChainTooLong, netvmNotRunning, startFailed } from "./lifecycle-errors";
import type { PowerMachine } from "./power-machine";
import { runtimeFacts, type RunningVms } from "./running-vms";

/** The longest netvm chain a start follows: far more than any real one (Qubes' have two or three). */
const MAX_NETVM_CHAIN = 64;

/**
 * Starting VMs, as Qubes does: the netvm chain first, then the participants' part of the launch
 * plan, then the launch. The VM is held from the start (one operation on it), so nothing
 * removes or renames it meanwhile; a kill aborts a start under way.
 */
export class VmStart {
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
  ) {}

  /**
   * Starts a halted VM after its netvm chain; resolves once it runs, or with `waitForGuest` once
   * its guest is up (its agent answers). A start that waits for the guest and outlives the
   * call (its deadline passed, it was cancelled) is undone: the VM is halted again, so that a
   * caller that retries finds it as it was.
   */
  async start(text: string, ctx: CallContext, options: { waitForGuest?: boolean } = {}): Promise<PowerState> {
    const vm = this.lookup.resolve(text);
    this.machine.allow(vm, "start");
    this.requireStartable(vm);
    return this.operations.on(text, "vm", ctx, "start it", async (record) => {
      this.machine.allow(record, "start");
      this.requireStartable(record);
      await this.startNetvmChain(record, ctx);
      this.requireNetvmRunning(record);
      return this.launch(record, ctx, options.waitForGuest === true);
    });
  }

  /**
   * Starts the netvms the VM's network goes through, the farthest first, each as an operation
   * of its own. The chain is walked with a bound, so that no data can make a start recurse
   * without end; a chain that comes back on itself is refused (NETVM_LOOP) before anything
   * starts.
   */
  private async startNetvmChain(vm: VmRecord, ctx: CallContext): Promise<void> {
    const chain: VmRecord[] = [vm];
    for (let hop = this.resolver.netvmOf(vm); hop; hop = this.resolver.netvmOf(hop)) {
      if (chain.some((seen) => seen.qid === hop.qid)) throw netvmLoop(vm.name, chain[1]?.name ?? hop.name, [...chain, hop].map((link) => link.name));
      if (chain.length > MAX_NETVM_CHAIN) throw netvmChainTooLong(vm, MAX_NETVM_CHAIN);
      chain.push(hop);
    }
    for (let i = chain.length - 1; i > 0; i--) await this.ensureRunning(vm, chain[i - 1], chain[i], ctx);
  }

  /**
   * Starts `netvm` (the netvm of `user`, in the chain of `starting`) unless it runs already, in
   * its own turn: two VMs that share a netvm start side by side, and the second finds it running.
   * Its own netvm started just before it (the farthest first). Starts that wait for each other's
   * VMs (the chains changed between them) are refused rather than left waiting for ever.
   */
  private ensureRunning(starting: VmRecord, user: VmRecord, netvm: VmRecord, ctx: CallContext): Promise<void> {
    return this.operations.on(
      `uuid:${netvm.uuid}`,
      "vm",
      ctx,
      `start ${netvm.name}, the netvm of ${user.name}`,
      async (record) => {
        const state = this.machine.state(record);
        if (state === "Running") return;
        if (state !== "Halted") throw netvmNotRunning(user, record, state);
        this.requireStartable(record);
        this.requireNetvmRunning(record);
        await this.launch(record, ctx);
      },
      starting,
    );
  }

  /** The plan a VM starts from, then its participants' part of it, then the launch itself. */
  private async launch(vm: VmRecord, ctx: CallContext, waitForGuest = false): Promise<PowerState> {
    this.machine.move(vm, "start");
    const killed = this.running.launching(vm.uuid);
    const signal = waitForGuest ? AbortSignal.any([killed, ctx.signal]) : killed;
    let handle: RunningVm;
    try {
      handle = await Revert.run(
        async (revert) => {
          const plan = { ...this.planOf(vm), waitForGuest };
          await this.participants.beforeStart(vm, plan, ctx, revert);
          return this.hypervisor.launch(plan, signal);
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
      this.running.launched(vm.uuid);
    }
    // Running first: what the guest did since its launch, told to the core once it follows the
    // handle, moves the VM on from there.
    this.machine.move(vm, "launched", {}, runtimeFacts(handle));
    this.running.attach(vm, handle);
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

  private requireNetvmRunning(vm: VmRecord): void {
    const netvm = this.resolver.netvmOf(vm);
    if (!netvm) return;
    const state = this.machine.state(netvm);
    if (state !== "Running") throw netvmNotRunning(vm, netvm, state);
  }

  /**
   * A VM that runs from a template has one, of its class; a DispVM's AppVM still serves DispVMs;
   * its memory is within its maxmem (a template's change can break that after it was set).
   */
  private requireStartable(vm: VmRecord): void {
    requireMemoryWithinMaxmem(this.resolver, vm);
    const needed = vmClass(vm.klass).templateClass;
    if (!needed) return;
    const template = this.resolver.templateOf(vm);
    if (!template) throw noTemplateToStart(vm);
    if (vmClass(needed).dispvmBase && !servesDispvms(this.resolver, template)) throw notADispvmTemplate(template);
  }
}
