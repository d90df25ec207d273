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

export interface Hypervisor {
  /** What this hypervisor is; stable for the life of the process. */
  info(): HypervisorInfo;
  /** The power state of the VM with this UUID; Halted when the hypervisor runs no such VM. */
  powerState(uuid: string): PowerState;
  /** When the VM with this UUID started; undefined while it does not run. */
  startTime(uuid: string): Date | undefined;
}
