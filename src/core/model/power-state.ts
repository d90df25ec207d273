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
