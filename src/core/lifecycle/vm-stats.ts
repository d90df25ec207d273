/**
 * A running VM's resource use (Qubes' admin.vm.Stats, libvirt's domstats), sampled from its
 * hypervisor: once (GetVmStats) or at an interval, for one VM or for every running one
 * (WatchVmStats). CPU use is worked out here from two samples' CPU times: over the time since
 * the VM's previous sample, or since its start for its first.
 */
import { serverStopping } from "../errors";
import type { CallContext } from "../shared/call-context";
import type { VmRecord } from "../model/vm-record";
import type { PowerState } from "../model/power-state";
import type { DiskIoStats, GuestStatsSample, InterfaceIoStats, RunningVm } from "../../ports/hypervisor";
import type { Store } from "../../ports/store";
import { globalSpec } from "../vms/properties/property-schema";
import type { PropertyResolver } from "../vms/properties/property-resolver";
import type { VmLookup } from "../vms/vm-lookup";
import type { PowerMachine } from "./power-machine";
import { statsIntervalTooShort, vmBadState } from "./lifecycle-errors";
import type { RunningVms } from "./running-vms";

/** The shortest interval a watch samples at: sampling a QEMU asks four things of its monitor and reads /proc. */
export const MIN_STATS_INTERVAL_MS = 100;

export interface VmStatsView {
  vm: string;
  time: Date;
  state: PowerState;
  cpuTimeNs: number;
  /** CPU use since the previous sample, in percent of one CPU (up to 100 × vcpus). */
  cpuUsagePercent: number;
  memoryBytes: number;
  maxMemoryBytes: number;
  rssBytes: number;
  disks: DiskIoStats[];
  interfaces: InterfaceIoStats[];
}

export interface StatsWatch {
  /** One VM's name or uuid; undefined for every running VM. */
  vm?: string;
  /** Time between samples; undefined for the global stats_interval, read before each wait. */
  intervalMs?: number;
}

/** The last sample of a VM's run, which the next one's CPU use is measured from. */
type LastSamples = WeakMap<RunningVm, GuestStatsSample>;

export class VmStatsReader {
  /** GetVmStats' own last samples, one per run (a handle); each watch keeps its own. */
  private readonly lastSampled: LastSamples = new WeakMap();

  constructor(
    private readonly store: Store,
    private readonly lookup: VmLookup,
    private readonly machine: PowerMachine,
    private readonly running: RunningVms,
    private readonly resolver: PropertyResolver,
  ) {}

  /** One sample of a VM; VM_BAD_STATE while it does not run. */
  async sample(text: string): Promise<VmStatsView> {
    const vm = this.lookup.resolve(text);
    return this.sampleOf(vm, this.handleOf(vm), this.lastSampled);
  }

  /**
   * Samples at the interval until the caller stops waiting; a watch of one VM ends when that
   * run of it ends, a watch of all takes in the VMs that start meanwhile. A VM that halts
   * while it is sampled is left out of that round. The server's stopping ends it with
   * UNAVAILABLE, so that the client reconnects.
   */
  async *watch(request: StatsWatch, ctx: CallContext, draining: AbortSignal): AsyncGenerator<VmStatsView> {
    if (request.intervalMs !== undefined && request.intervalMs < MIN_STATS_INTERVAL_MS) throw statsIntervalTooShort(request.intervalMs, MIN_STATS_INTERVAL_MS);
    const only = request.vm === undefined ? undefined : this.lookup.resolve(request.vm);
    const onlyHandle = only && this.handleOf(only);
    const last: LastSamples = new WeakMap();
    for (;;) {
      if (onlyHandle && this.running.handle(onlyHandle.uuid) !== onlyHandle) return;
      const targets = only && onlyHandle ? [{ vm: only, handle: onlyHandle }] : this.runningVms();
      const samples = await Promise.allSettled(targets.map(({ vm, handle }) => this.sampleOf(vm, handle, last)));
      for (const sample of samples) if (sample.status === "fulfilled") yield sample.value;
      const failed = samples.find((sample) => sample.status === "rejected");
      // One VM watched that still runs, but cannot be sampled: the watch fails with the reason.
      if (onlyHandle && failed && this.running.handle(onlyHandle.uuid) === onlyHandle) throw failed.reason;
      await pause(request.intervalMs ?? this.globalIntervalMs(), [ctx.signal, draining]);
      if (draining.aborted) throw serverStopping();
      if (ctx.signal.aborted) return;
    }
  }

  private handleOf(vm: VmRecord): RunningVm {
    // VM_BAD_STATE while it does not run; CAPABILITY_MISSING where its hypervisor keeps no stats.
    this.running.capability(vm, "stats");
    return this.running.handle(vm.uuid) as RunningVm;
  }

  /** The running VMs that offer stats, by name. */
  private runningVms(): { vm: VmRecord; handle: RunningVm }[] {
    const found: { vm: VmRecord; handle: RunningVm }[] = [];
    for (const uuid of this.running.uuids()) {
      const vm = this.store.vms.byUuid(uuid);
      const handle = this.running.handle(uuid);
      if (vm && handle?.stats) found.push({ vm, handle });
    }
    return found.sort((a, b) => (a.vm.name < b.vm.name ? -1 : a.vm.name > b.vm.name ? 1 : 0));
  }

  private async sampleOf(vm: VmRecord, handle: RunningVm, last: LastSamples): Promise<VmStatsView> {
    let sample: GuestStatsSample;
    try {
      sample = await (handle.stats as NonNullable<RunningVm["stats"]>).sample();
    } catch (error) {
      // It ended while it was asked: it is halted, not broken.
      if (this.running.handle(vm.uuid) !== handle) throw vmBadState(vm, "read the stats of", this.machine.state(vm));
      throw error;
    }
    const previous = last.get(handle);
    last.set(handle, sample);
    return {
      vm: vm.name,
      time: sample.time,
      state: this.machine.state(vm),
      cpuTimeNs: sample.cpuTimeNs,
      cpuUsagePercent: usagePercent(previous ?? { time: handle.startedAt, cpuTimeNs: 0 }, sample),
      memoryBytes: sample.memoryBytes,
      maxMemoryBytes: sample.maxMemoryBytes,
      rssBytes: sample.rssBytes,
      disks: sample.disks,
      interfaces: sample.interfaces,
    };
  }

  private globalIntervalMs(): number {
    return 1000 * (this.resolver.global(globalSpec("stats_interval")).value as number);
  }
}

/** CPU time used between two samples, in percent of the wall time between them; 0 when no time passed. */
export function usagePercent(from: { time: Date; cpuTimeNs: number }, to: { time: Date; cpuTimeNs: number }): number {
  const wallNs = (to.time.getTime() - from.time.getTime()) * 1e6;
  if (wallNs <= 0) return 0;
  return (Math.max(0, to.cpuTimeNs - from.cpuTimeNs) / wallNs) * 100;
}

/** Waits `ms`, or until one of the signals aborts. */
function pause(ms: number, signals: readonly AbortSignal[]): Promise<void> {
  if (signals.some((signal) => signal.aborted)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      for (const signal of signals) signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    for (const signal of signals) signal.addEventListener("abort", done, { once: true });
  });
}
