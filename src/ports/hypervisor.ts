/**
 * The hypervisor port: what the core needs from whatever runs the VMs, shaped for an
 * event-driven driver (QEMU over QMP). A driver launches a VM from its plan and hands back a
 * handle for the running guest; from then on the guest tells what it does as events, which the
 * core's power-state table follows. At start, a driver hands over the VMs it finds already
 * running (left by an earlier Steward), so that they are adopted rather than forgotten.
 */
import type { HypervisorInfo } from "../core/model/host";
import type { LaunchDisk, LaunchDevice, LaunchPlan } from "../core/model/launch-plan";
import type { HaltCause, HostInterface } from "../core/model/power-state";

export type { HypervisorInfo, HypervisorKind } from "../core/model/host";

/** What a guest does that the core hears of, as QEMU's QMP events tell it. */
export type GuestEvent =
  /** It stopped running (QMP STOP): paused, by Steward or by QEMU itself (an I/O error). */
  | { kind: "stopped" }
  /** It runs again (RESUME). */
  | { kind: "resumed" }
  /** It went to sleep (SUSPEND, ACPI S3). */
  | { kind: "suspended" }
  /** It woke from sleep (WAKEUP). */
  | { kind: "woken" }
  /** It is powering off (SHUTDOWN); `exited` follows. */
  | { kind: "shutdown" }
  /** It reset (RESET). */
  | { kind: "reset" }
  /** It panicked (GUEST_PANICKED); `exited` follows. */
  | { kind: "panicked"; detail: string }
  /** It ended: the VM is halted. The last event of a handle. */
  | { kind: "exited"; cause: HaltCause; detail: string };

/** Which of a VM's host processes a signal goes to. */
export type KillWho = "leader" | "all";

/** What an adopted guest was doing when its driver found it. */
export type GuestStatus = "running" | "paused" | "suspended" | "shutting-down";

/** A running VM, as its driver handles it. */
export interface RunningVm {
  readonly uuid: string;
  /**
   * The hypervisor's process for it on the host (machined's Leader): QEMU's; the simulation's
   * guests run inside Steward's own process, whose pid they give.
   */
  readonly pid: number;
  readonly startedAt: Date;
  /** The vsock context id the guest was given; absent or 0 when it has none. */
  readonly vsockCid?: number;
  /** Its network interfaces as the host sees them; absent when it has none. */
  readonly interfaces?: readonly HostInterface[];
  /** What the guest is doing, as the driver last heard. */
  status(): GuestStatus;
  /**
   * Calls `listener` with each event of the guest, in order; `exited` comes last, once, whatever
   * ended the guest (including kill() and the death of its process). What the guest did before
   * the first listener came (between the launch and the core's taking the handle) is told to
   * that listener first: no event is lost, an early exit least of all.
   */
  onEvent(listener: (event: GuestEvent) => void): void;
  /** Stops the guest's CPUs (`stopped` follows). */
  pause(): Promise<void>;
  /** Runs them again (`resumed` follows). */
  unpause(): Promise<void>;
  /** Puts the guest to sleep (S3); FAILED_PRECONDITION where the guest cannot sleep. */
  suspend(): Promise<void>;
  /** Wakes a sleeping guest. */
  resume(): Promise<void>;
  /** Presses the power button (ACPI): the guest shuts down if it honours it. */
  powerButton(): Promise<void>;
  /** Ends the VM at once; `exited` (killed) follows. */
  kill(): Promise<void>;
  /**
   * Sends a signal other than SIGKILL to the VM's hypervisor process (`leader`) or to every
   * process it runs for the VM (`all`), as machined's KillMachine; what follows is what the
   * signal makes the process do. Absent where the driver cannot.
   */
  signal?(signal: number, who: KillWho): Promise<void>;
  /** Optional capabilities: present where the driver offers them for this guest. */
  readonly console?: GuestConsole;
  readonly stats?: GuestStats;
  readonly hotPlug?: HotPlug;
  /** What the guest's agent tells; absent where the driver has no agent channel to the guest. */
  readonly agent?: GuestAgentFacts;
}

/** An address the guest has on one of its interfaces (loopback left out). */
export interface GuestAddress {
  family: "inet" | "inet6";
  address: string;
}

/** Facts the guest agent tells of the guest; each rejects with GUEST_AGENT_ABSENT when the agent does not answer. */
export interface GuestAgentFacts {
  addresses(): Promise<GuestAddress[]>;
  /** The guest's os-release, as its fields' keys name them (ID, VERSION_ID, PRETTY_NAME…). */
  osRelease(): Promise<Record<string, string>>;
}

/** The guest's serial console, as a byte stream each way. */
export interface GuestConsole {
  open(signal: AbortSignal): Promise<ConsoleStream>;
}

export interface ConsoleStream {
  /** What the guest writes, in chunks, until the stream closes. */
  readonly output: AsyncIterable<Uint8Array>;
  /** Types into the console; resolves once the bytes are handed over (backpressure). */
  write(bytes: Uint8Array): Promise<void>;
  close(): void;
}

/** The guest's resource use, sampled. */
export interface GuestStats {
  /** One sample, taken now; rejects when the guest ended meanwhile. */
  sample(): Promise<GuestStatsSample>;
}

export interface GuestStatsSample {
  time: Date;
  /** CPU time the guest's vCPUs used, in nanoseconds, since it started; it never goes back. */
  cpuTimeNs: number;
  /** Memory the guest has now (its balloon's size where it has one), in bytes. */
  memoryBytes: number;
  /** Memory it may grow to (what it booted with: the balloon's ceiling), in bytes. */
  maxMemoryBytes: number;
  /** Host memory the hypervisor's process for it holds (its resident set), in bytes; 0 where it has no process of its own. */
  rssBytes: number;
  /** I/O on each of its disks since it started, in the plan's order, by the disk's name. */
  disks: DiskIoStats[];
  /** Traffic on each of its network interfaces, as the guest sees it (what the host side sends, the guest receives). */
  interfaces: InterfaceIoStats[];
}

export interface DiskIoStats {
  /** The disk's name in the plan: root, private, volatile, kernel… */
  name: string;
  readBytes: number;
  writeBytes: number;
  readOps: number;
  writeOps: number;
}

export interface InterfaceIoStats {
  /** The host-side device's name. */
  name: string;
  rxBytes: number;
  txBytes: number;
  rxPackets: number;
  txPackets: number;
}

/** Adding and removing disks and devices while the guest runs. */
export interface HotPlug {
  attachDisk(disk: LaunchDisk): Promise<void>;
  detachDisk(name: string): Promise<void>;
  attachDevice(device: LaunchDevice): Promise<void>;
  detachDevice(device: LaunchDevice): Promise<void>;
}

export interface Hypervisor {
  /** What this hypervisor is; stable for the life of the process. */
  info(): HypervisorInfo;
  /** The VMs this driver finds running at start, left by an earlier Steward, to adopt; called once. */
  adopt(): Promise<RunningVm[]>;
  /**
   * Starts a VM from its plan; resolves once the guest runs. When it cannot, it rejects and
   * leaves nothing running. When `signal` aborts before then (the VM is killed while it
   * starts), it ends what it started and rejects with START_ABORTED, without waiting for the
   * boot. A uuid that runs already, or is being launched, is refused.
   */
  launch(plan: LaunchPlan, signal: AbortSignal): Promise<RunningVm>;
  /**
   * Lets go of the running VMs without ending them (Steward is stopping; the next one adopts
   * them): their handles tell nothing more.
   */
  release(): Promise<void>;
}

