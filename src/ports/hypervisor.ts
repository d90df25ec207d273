/** The hypervisor port: what the core needs from whatever runs the VMs. */

/** Which hypervisor runs the VMs. */
export type HypervisorKind = "qemu-kvm" | "qemu-tcg" | "sim";

export interface HypervisorInfo {
  kind: HypervisorKind;
  /** The hypervisor's own version line; empty for the simulation. */
  version: string;
  /** Capabilities it brings, such as "kvm". */
  capabilities: string[];
}

/** Qubes' power states. */
export type PowerState = "Halted" | "Transient" | "Running" | "Paused" | "Suspended" | "Halting" | "Dying" | "Crashed" | "NA";

/** What the hypervisor needs to start a VM. */
export interface StartSpec {
  uuid: string;
  name: string;
  memoryMib: number;
  vcpus: number;
  /** The VM's features, which a guest may read (and the simulation takes its cues from). */
  features: Readonly<Record<string, string>>;
}

export interface Hypervisor {
  /** What this hypervisor is; stable for the life of the process. */
  info(): HypervisorInfo;
  /** The power state of the VM with this UUID; Halted when the hypervisor runs no such VM. */
  powerState(uuid: string): PowerState;
  /** When the VM with this UUID started; undefined while it does not run. */
  startTime(uuid: string): Date | undefined;
  /** Starts a halted VM; resolves once it runs, rejects (and leaves it halted) when it cannot. */
  start(spec: StartSpec): Promise<void>;
  /** Asks the guest to shut down; the VM is Halting until it halts. */
  shutdown(uuid: string): Promise<void>;
  /** Stops the VM at once. */
  kill(uuid: string): Promise<void>;
  pause(uuid: string): Promise<void>;
  unpause(uuid: string): Promise<void>;
  suspend(uuid: string): Promise<void>;
  resume(uuid: string): Promise<void>;
  /** Calls `listener` whenever a VM halts, whatever the cause. */
  onHalted(listener: (uuid: string) => void): void;
}
