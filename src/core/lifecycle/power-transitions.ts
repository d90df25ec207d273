import type { EventSubject, NewEvent } from "../model/event";
import type { PowerState } from "../model/power-state";
import {
  domainPaused,
  domainPreShutdown,
  domainPreStart,
  domainResumed,
  domainShutdown,
  domainStart,
  domainStartFailed,
  domainSuspended,
  domainUnpaused,
  type HaltReason,
} from "./lifecycle-events";

/** What a caller asks of a VM's power state. */
export type PowerAction = "start" | "shutdown" | "kill" | "pause" | "unpause" | "suspend" | "resume";

/**
 * What moves a power state: a caller's action; a launch that ended (launched, launch-failed);
 * or an event of the guest, as the hypervisor tells it (guest-…, see GuestEvent).
 */
export type PowerTrigger =
  | PowerAction
  | "launched"
  | "launch-failed"
  | "guest-stopped"
  | "guest-resumed"
  | "guest-suspended"
  | "guest-woken"
  | "guest-shutdown"
  | "guest-reset"
  | "guest-panicked"
  /** Its process ended unasked (the exit of a crash, told before guest-exited). */
  | "guest-crashed"
  | "guest-exited";

/** What the events of a transition are told with. */
export interface TransitionDetail {
  /** Why a start failed. */
  reason?: string;
  /** Whether a shutdown is forced. */
  force?: boolean;
  /** How the VM halted. */
  halt?: HaltReason;
}

/** A halt whose telling lost its reason: never expected, but told rather than dropped. */
const UNTOLD_HALT: HaltReason = { cause: "crashed", detail: "it halted, Steward does not know how" };

export interface Transition {
  on: PowerTrigger;
  from: readonly PowerState[];
  to: PowerState;
  /** The events the transition tells, in order. */
  tells: readonly ((vm: EventSubject, detail: TransitionDetail) => NewEvent)[];
}

/** Every state but Halted (and NA, which no VM of this host is in). */
const LIVE: readonly PowerState[] = ["Transient", "Running", "Paused", "Suspended", "Halting", "Crashed", "Dying"];

/**
 * The power-state machine, as one table: from which states each trigger moves a VM, to which,
 * and what it tells. An action that no row allows from the VM's state is refused (VM_BAD_STATE);
 * a guest event that no row takes from it changes nothing (a guest that says it stopped once
 * Steward paused it already).
 */
export const POWER_TRANSITIONS: readonly Transition[] = [
  { on: "start", from: ["Halted"], to: "Transient", tells: [domainPreStart] },
  { on: "launched", from: ["Transient"], to: "Running", tells: [domainStart] },
  { on: "launch-failed", from: ["Transient"], to: "Halted", tells: [(vm, d) => domainStartFailed(vm, d.reason ?? "")] },
  // Killed while it started: it halted, and its start failed.
  { on: "launch-failed", from: ["Dying"], to: "Halted", tells: [(vm) => domainShutdown(vm, { cause: "killed", detail: "killed while it started" }), (vm, d) => domainStartFailed(vm, d.reason ?? "")] },
  { on: "pause", from: ["Running"], to: "Paused", tells: [domainPaused] },
  { on: "unpause", from: ["Paused"], to: "Running", tells: [domainUnpaused] },
  { on: "suspend", from: ["Running"], to: "Suspended", tells: [domainSuspended] },
  { on: "resume", from: ["Suspended"], to: "Running", tells: [domainResumed] },
  { on: "shutdown", from: ["Running", "Paused"], to: "Halting", tells: [(vm, d) => domainPreShutdown(vm, d.force ?? false)] },
  // Asked again while it halts: it goes on halting, and nothing more is told.
  { on: "shutdown", from: ["Halting"], to: "Halting", tells: [] },
  { on: "kill", from: LIVE, to: "Dying", tells: [] },
  { on: "guest-stopped", from: ["Running"], to: "Paused", tells: [domainPaused] },
  { on: "guest-resumed", from: ["Paused"], to: "Running", tells: [domainUnpaused] },
  { on: "guest-suspended", from: ["Running"], to: "Suspended", tells: [domainSuspended] },
  { on: "guest-woken", from: ["Suspended"], to: "Running", tells: [domainResumed] },
  { on: "guest-shutdown", from: ["Running", "Paused", "Suspended"], to: "Halting", tells: [] },
  { on: "guest-panicked", from: ["Running", "Paused", "Suspended", "Halting"], to: "Crashed", tells: [] },
  { on: "guest-crashed", from: ["Running", "Paused", "Suspended", "Halting"], to: "Crashed", tells: [] },
  { on: "guest-exited", from: LIVE, to: "Halted", tells: [(vm, d) => domainShutdown(vm, d.halt ?? UNTOLD_HALT)] },
];

/** The row that `trigger` takes from `state`; undefined when none does. */
export function transitionFrom(state: PowerState, trigger: PowerTrigger): Transition | undefined {
  return POWER_TRANSITIONS.find((row) => row.on === trigger && row.from.includes(state));
}

/** How a done action is named in a refusal ("dom0 is the AdminVM and cannot be shut down"). */
export const ACTION_DONE: Readonly<Record<PowerAction, string>> = {
  start: "started",
  shutdown: "shut down",
  kill: "killed",
  pause: "paused",
  unpause: "unpaused",
  suspend: "suspended",
  resume: "resumed",
};

/** How an action is named in a refusal ("cannot shut down work: it is Halted"). */
export const ACTION_VERB: Readonly<Record<PowerAction, string>> = {
  start: "start",
  shutdown: "shut down",
  kill: "kill",
  pause: "pause",
  unpause: "unpause",
  suspend: "suspend",
  resume: "resume",
};
