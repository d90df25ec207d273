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

export interface Hypervisor {
  /** What this hypervisor is; stable for the life of the process. */
  info(): HypervisorInfo;
}
