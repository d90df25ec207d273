import type { HaltCause, HostInterface } from "../../../core/model/power-state";
import type { LaunchPlan } from "../../../core/model/launch-plan";
import type { GuestEvent, GuestStats, GuestStatsSample, GuestStatus, Hypervisor, HypervisorInfo, KillWho, RunningVm } from "../../../ports/hypervisor";
import { guestAgentAbsent, startAborted } from "../../../ports/hypervisor-errors";
import { ConsoleHub } from "../shared/console-hub";
import { GuestListeners } from "../shared/guest-listeners";

/** The simulated guest takes this long to shut down unless its sim-shutdown-ms feature says otherwise. */
const DEFAULT_SHUTDOWN_MS = 20;

/**
 * Where simulated guests run: this process's memory. A SimHypervisor made on the same host
 * adopts the guests an earlier one launched, as a restarted Steward adopts QEMU processes.
 */
export class SimHost {
  readonly guests = new Map<string, SimGuest>();
  /** The uuids being launched: a second launch of one is refused, as of one that runs. */
  readonly booting = new Set<string>();
}

/**
 * The simulated hypervisor: the same power states, events and transitions as a real one, but
 * no guest code runs. It exists for fast tests and for hosts without QEMU, and says so in
 * GetHostInfo. A VM's features tune the simulated guest: sim-start-ms (how long it boots),
 * sim-shutdown-ms (how long it takes to honour the power button, or "never"), sim-start-fails
 * (it fails to boot). Its serial console prints a line when it boots, and echoes what is
 * typed into it, as a terminal does.
 */
export class SimHypervisor implements Hypervisor {
  constructor(private readonly host = new SimHost()) {}

  info(): HypervisorInfo {
    return { kind: "sim", version: "", capabilities: [] };
  }

  async adopt(): Promise<RunningVm[]> {
    return [...this.host.guests.values()];
  }

  async launch(plan: LaunchPlan, signal: AbortSignal): Promise<RunningVm> {
    const { guests, booting } = this.host;
    if (guests.has(plan.uuid) || booting.has(plan.uuid)) throw new Error(`${plan.name} runs in the simulation already`);
    // A simulated guest runs no agent to say it is up.
    if (plan.waitForGuest) throw guestAgentAbsent(plan.name, "wait for the guest");
    booting.add(plan.uuid);
    try {
      const startedAt = new Date();
      await boot(Number(plan.features["sim-start-ms"] ?? 0), signal);
      if (signal.aborted) throw startAborted(plan.name);
      if (plan.features["sim-start-fails"]) throw new Error(`the simulated guest of ${plan.name} failed to boot`);
      const shutdown = plan.features["sim-shutdown-ms"];
      const guest = new SimGuest(plan.uuid, startedAt, shutdown === "never" ? undefined : Number(shutdown ?? DEFAULT_SHUTDOWN_MS), () => guests.delete(plan.uuid), simulatedUse(plan));
      guest.interfaces = plan.networkInterfaces.map((nic) => ({ name: nic.hostInterface, mac: nic.mac }));
      guest.console.received(new TextEncoder().encode(`${plan.name} booted in the simulation\r\n`));
      guests.set(plan.uuid, guest);
      return guest;
    } finally {
      booting.delete(plan.uuid);
    }
  }

  async release(): Promise<void> {
    for (const guest of this.host.guests.values()) guest.release();
  }
}

/** What a simulated guest's stats say it uses, from its plan. */
interface SimulatedUse {
  /** CPU use while it runs, in percent of one CPU. */
  cpuPercent: number;
  memoryBytes: number;
  maxMemoryBytes: number;
  disks: readonly string[];
  interfaces: readonly string[];
}

function simulatedUse(plan: LaunchPlan): SimulatedUse {
  const cpuPercent = Number(plan.features["sim-cpu-percent"] ?? 0);
  const mib = 1024 * 1024;
  return {
    cpuPercent: Number.isFinite(cpuPercent) ? Math.min(Math.max(cpuPercent, 0), 100 * plan.vcpus) : 0,
    memoryBytes: plan.memoryMib * mib,
    maxMemoryBytes: Math.max(plan.memoryMib, plan.maxmemMib) * mib,
    disks: plan.disks.map((disk) => disk.name),
    interfaces: plan.networkInterfaces.map((nic) => nic.hostInterface),
  };
}

/** Waits out a boot; ends early when the start is aborted. */
function boot(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = ms > 0 ? setTimeout(done, ms) : undefined;
    if (ms <= 0) setImmediate(done);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** The signals on which QEMU ends the VM (its os-posix termination handler): SIGHUP, SIGINT, SIGTERM. */
const ENDING_SIGNALS = new Set([1, 2, 15]);

/** One simulated guest, and its handle. */
export class SimGuest implements RunningVm {
  /** A simulated guest runs inside this process. */
  readonly pid = process.pid;
  /** The host ends of the interfaces its plan gave it. */
  interfaces: readonly HostInterface[] = [];
  private current: GuestStatus = "running";
  private readonly listeners = new GuestListeners();
  /** Its serial console, which echoes what is typed. */
  readonly console: ConsoleHub = new ConsoleHub(async (bytes): Promise<void> => this.console.received(bytes));
  private shutdownTimer: NodeJS.Timeout | undefined;
  /** The power button was pressed while the guest was not running: it shuts down once it runs. */
  private buttonPending = false;
  private ended = false;
  /** CPU time used in the runs that ended, and when the current run began (undefined while it does not run). */
  private cpuNsBefore = 0;
  private runningSince: number | undefined;
  readonly stats: GuestStats = { sample: async () => this.sample() };

  constructor(
    readonly uuid: string,
    readonly startedAt: Date,
    /** How long the guest takes to honour the power button; undefined: it never does. */
    private readonly shutdownMs: number | undefined,
    private readonly gone: () => void,
    private readonly use: SimulatedUse,
  ) {
    this.runningSince = performance.now();
  }

  status(): GuestStatus {
    return this.current;
  }

  onEvent(listener: (event: GuestEvent) => void): void {
    this.listeners.add(listener);
  }

  /** Whoever followed the guest is gone (a Steward that stopped): it tells them nothing more. */
  release(): void {
    this.listeners.clear();
  }

  async pause(): Promise<void> {
    if (this.current === "running") this.become("paused", { kind: "stopped" });
  }

  async unpause(): Promise<void> {
    if (this.current === "paused") this.become("running", { kind: "resumed" });
  }

  async suspend(): Promise<void> {
    if (this.current === "running") this.become("suspended", { kind: "suspended" });
  }

  async resume(): Promise<void> {
    if (this.current === "suspended") this.become("running", { kind: "woken" });
  }

  async powerButton(): Promise<void> {
    if (this.ended || this.current === "shutting-down") return;
    // A guest whose CPUs are stopped does not hear the button until they run again.
    if (this.current !== "running") {
      this.buttonPending = true;
      return;
    }
    this.current = "shutting-down";
    if (this.shutdownMs === undefined) return;
    this.shutdownTimer = setTimeout(() => {
      this.emit({ kind: "shutdown" });
      this.exit("shutdown", "the guest powered off");
    }, this.shutdownMs);
  }

  async kill(): Promise<void> {
    this.exit("killed", "killed");
  }

  /** The simulated guest's process dies unasked, as a QEMU that crashed or that someone else killed. */
  crash(detail: string): void {
    this.exit("crashed", detail);
  }

  /** As QEMU does: SIGHUP, SIGINT and SIGTERM end it (the host shut it down); others do nothing. */
  async signal(signal: number, _who: KillWho): Promise<void> {
    if (ENDING_SIGNALS.has(signal)) this.exit("killed", `terminated on signal ${signal}`);
  }

  private sample(): GuestStatsSample {
    if (this.ended) throw new Error("the simulated guest ended");
    const { memoryBytes, maxMemoryBytes } = this.use;
    return {
      time: new Date(),
      cpuTimeNs: Math.round(this.cpuTimeNs(performance.now())),
      memoryBytes,
      maxMemoryBytes,
      rssBytes: 0,
      disks: this.use.disks.map((name) => ({ name, readBytes: 0, writeBytes: 0, readOps: 0, writeOps: 0 })),
      interfaces: this.use.interfaces.map((name) => ({ name, rxBytes: 0, txBytes: 0, rxPackets: 0, txPackets: 0 })),
    };
  }

  /** The CPU time it used up to `now` (performance.now()): the runs that ended, and the one under way. */
  private cpuTimeNs(now: number): number {
    const runningNs = this.runningSince === undefined ? 0 : (now - this.runningSince) * 1e6;
    return this.cpuNsBefore + (runningNs * this.use.cpuPercent) / 100;
  }

  /** Its CPUs run or stop: the CPU time of the run that ends is counted. */
  private cpusRun(running: boolean): void {
    const now = performance.now();
    this.cpuNsBefore = this.cpuTimeNs(now);
    this.runningSince = running ? now : undefined;
  }

  private become(status: GuestStatus, event: GuestEvent): void {
    if (this.ended) return;
    this.cpusRun(status === "running");
    this.current = status;
    this.emit(event);
    if (status === "running" && this.buttonPending) {
      this.buttonPending = false;
      void this.powerButton();
    }
  }

  private exit(cause: HaltCause, detail: string): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.shutdownTimer);
    this.gone();
    this.console.end();
    this.emit({ kind: "exited", cause, detail });
    this.listeners.clear();
  }

  private emit(event: GuestEvent): void {
    this.listeners.emit(event);
  }
}
