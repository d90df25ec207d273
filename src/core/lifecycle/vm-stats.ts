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
import type { HaltWaiters } from "./halt-waiters";
import { LongTimer } from "../shared/long-timer";
import type { Log } from "../../ports/log";

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

type CpuPoint = Pick<GuestStatsSample, "time" | "cpuTimeNs">;

/**
 * A run's last samples, by its handle, that the next one's CPU use is measured from: the last
 * (`latest`), or the one before it (`before`) when the last is too recent to measure over.
 */
type Baselines = WeakMap<RunningVm, { latest: CpuPoint; before: CpuPoint }>;

/**
 * The shortest window GetVmStats measures CPU use over: a sample taken sooner after the last
 * one (another caller's, say) is measured from the same baseline as that one, not over the
 * moment between them.
 */
const MIN_USAGE_WINDOW_MS = 100;

/** How long a sample that failed waits for its VM's end to be told, when the failure was that end (QEMU's monitor closing first). */
const ENDING_GRACE_MS = 2000;

export class VmStatsReader {
  /** GetVmStats' baselines, shared by its callers; each watch keeps its own. */
  private readonly baselines: Baselines = new WeakMap();

  constructor(
    private readonly store: Store,
    private readonly lookup: VmLookup,
    private readonly machine: PowerMachine,
    private readonly running: RunningVms,
    private readonly resolver: PropertyResolver,
    private readonly halts: HaltWaiters,
    private readonly log: Log,
  ) {}

  /** One sample of a VM; VM_BAD_STATE while it does not run (or when it ends as it is sampled). */
  async sample(text: string, ctx: CallContext): Promise<VmStatsView> {
    const vm = this.lookup.resolve(text);
    return this.sampleOf(vm, this.handleOf(vm), this.baselines, MIN_USAGE_WINDOW_MS, ctx.signal);
  }

  /**
   * Samples at the interval until the caller stops waiting. A watch of one VM ends once that
   * run of it ends (at once, not at the next round); a watch of all takes in the VMs that
   * start meanwhile, and leaves out of a round a VM that cannot be sampled (logged, unless it
   * ended). The server's stopping ends it with UNAVAILABLE, so that the client reconnects.
   */
  async *watch(request: StatsWatch, ctx: CallContext, draining: AbortSignal): AsyncGenerator<VmStatsView> {
    if (request.intervalMs !== undefined && request.intervalMs < MIN_STATS_INTERVAL_MS) throw statsIntervalTooShort(request.intervalMs, MIN_STATS_INTERVAL_MS);
    const only = request.vm === undefined ? undefined : this.lookup.resolve(request.vm);
    const onlyHandle = only && this.handleOf(only);
    const stopped = AbortSignal.any([ctx.signal, draining]);
    const baselines: Baselines = new WeakMap();
    for (;;) {
      const targets = only && onlyHandle ? [{ vm: only, handle: onlyHandle }] : this.runningVms();
      const samples = await Promise.allSettled(targets.map(({ vm, handle }) => this.sampleOf(vm, handle, baselines, 0, stopped)));
      for (const [at, sample] of samples.entries()) {
        if (sample.status === "fulfilled") yield sample.value;
        else if (!onlyHandle && !stopped.aborted && !this.ended(targets[at].handle)) this.log.warn({ vm: targets[at].vm.name, err: sample.reason as unknown }, "a VM's stats could not be sampled");
      }
      if (onlyHandle) {
        if (this.ended(onlyHandle)) return;
        const failed = samples.find((sample) => sample.status === "rejected");
        // The one VM watched runs on, but cannot be sampled: the watch fails with why.
        if (failed && !stopped.aborted) throw failed.reason;
      }
      await this.wait(request.intervalMs ?? this.globalIntervalMs(), onlyHandle, stopped);
      if (draining.aborted) throw serverStopping();
      if (ctx.signal.aborted) return;
      if (onlyHandle && this.ended(onlyHandle)) return;
    }
  }

  private handleOf(vm: VmRecord): RunningVm {
    // VM_BAD_STATE while it does not run; CAPABILITY_MISSING where its hypervisor keeps no stats.
    this.running.capability(vm, "stats");
    return this.running.handle(vm.uuid) as RunningVm;
  }

  /** Whether this run of its VM is over (the core let go of its handle). */
  private ended(handle: RunningVm): boolean {
    return this.running.handle(handle.uuid) !== handle;
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

  private async sampleOf(vm: VmRecord, handle: RunningVm, baselines: Baselines, minWindowMs: number, signal: AbortSignal): Promise<VmStatsView> {
    let sample: GuestStatsSample;
    try {
      sample = await (handle.stats as NonNullable<RunningVm["stats"]>).sample();
    } catch (error) {
      // Its end may fail the sample before the end is told (QEMU's monitor closes first): then it is halted, not broken.
      const gone = await this.halts.haltedWithin(vm.uuid, () => this.ended(handle), ENDING_GRACE_MS, signal, "sampling its stats").catch(() => false);
      if (gone) throw vmBadState(vm, "read the stats of", this.machine.state(vm));
      throw error;
    }
    const start = { time: handle.startedAt, cpuTimeNs: 0 };
    const { latest, before } = baselines.get(handle) ?? { latest: start, before: start };
    const longEnough = sample.time.getTime() - latest.time.getTime() >= minWindowMs;
    const cpuUsagePercent = usagePercent(longEnough ? latest : before, sample);
    if (longEnough) baselines.set(handle, { latest: sample, before: latest });
    return {
      vm: vm.name,
      time: sample.time,
      state: this.machine.state(vm),
      cpuTimeNs: sample.cpuTimeNs,
      cpuUsagePercent,
      memoryBytes: sample.memoryBytes,
      maxMemoryBytes: sample.maxMemoryBytes,
      rssBytes: sample.rssBytes,
      disks: sample.disks,
      interfaces: sample.interfaces,
    };
  }

  /** Waits out the interval, however long (past Node's longest timer); a watch of one VM stops waiting when that VM halts. */
  private async wait(ms: number, only: RunningVm | undefined, stopped: AbortSignal): Promise<void> {
    if (only === undefined) return pause(ms, stopped);
    // Woken by its halt; CANCELLED when the watch stops, which the watch's loop then tells.
    await this.halts.haltedWithin(only.uuid, () => this.ended(only), ms, stopped, "waiting between samples").catch(() => undefined);
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

/** Waits `ms`, however long, or until `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      timer.cancel();
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = new LongTimer(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
