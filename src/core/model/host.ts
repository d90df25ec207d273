/** The host's own record, made by the first start on a data folder. */
export interface HostRecord {
  /** A UUID made when the state was first created. */
  hostId: string;
  /** When the state was first created. */
  createdAt: Date;
  /** A random secret made with the state, that signs what Steward hands out to be given back (page tokens). */
  secret: Uint8Array;
}

/** Which hypervisor runs the VMs. */
export type HypervisorKind = "qemu-kvm" | "qemu-tcg" | "sim";

export interface HypervisorInfo {
  kind: HypervisorKind;
  /** The hypervisor's own version line; empty for the simulation. */
  version: string;
  /** Capabilities it brings, such as "kvm". */
  capabilities: string[];
}
