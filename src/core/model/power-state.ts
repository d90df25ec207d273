/** Qubes' power states of a VM, as the core's power-state table holds them. */
export type PowerState = "Halted" | "Transient" | "Running" | "Paused" | "Suspended" | "Halting" | "Dying" | "Crashed" | "NA";

/** How a VM came to halt, as its participants are told (after halt) and its events say. */
export type HaltCause =
  /** The guest powered off, on its own or asked by a shutdown. */
  | "shutdown"
  /** Steward ended it (KillVm, or a shutdown that was forced). */
  | "killed"
  /** It ended unasked: the guest panicked, or its process died. */
  | "crashed";

/** A network interface of a running VM as the host sees it (the tap device its netvm serves). */
export interface HostInterface {
  /** The host-side device's name. */
  name: string;
  /** The guest's MAC address on it. */
  mac: string;
}

/** What the hypervisor tells of a VM while it runs (vm_concierge's vm_info, machined's Leader). */
export interface RuntimeFacts {
  startedAt: Date;
  /** The hypervisor's process for the VM on the host. */
  pid: number;
  /** The vsock context id given to the guest; 0 when it has none. */
  vsockCid: number;
  interfaces: readonly HostInterface[];
}
