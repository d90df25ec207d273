import type { EventSubject, NewEvent } from "../model/event";
import type { HaltCause } from "../model/power-state";

/** How a VM halted, as its domain-shutdown tells. */
export interface HaltReason {
  cause: HaltCause;
  detail: string;
}

/** The events of a VM's power states, in Qubes' names. */

type Named = EventSubject;

function told(vm: Named, name: string, kwargs: Record<string, string> = {}): NewEvent {
  return { subject: vm.name, subjectUuid: vm.uuid, name, kwargs };
}

export const domainPreStart = (vm: Named): NewEvent => told(vm, "domain-pre-start");
export const domainStart = (vm: Named): NewEvent => told(vm, "domain-start");
export const domainStartFailed = (vm: Named, reason: string): NewEvent => told(vm, "domain-start-failed", { reason });
export const domainPaused = (vm: Named): NewEvent => told(vm, "domain-paused");
export const domainUnpaused = (vm: Named): NewEvent => told(vm, "domain-unpaused");
export const domainSuspended = (vm: Named): NewEvent => told(vm, "domain-suspended");
export const domainResumed = (vm: Named): NewEvent => told(vm, "domain-resumed");
export const domainPreShutdown = (vm: Named, force: boolean): NewEvent => told(vm, "domain-pre-shutdown", { force: force ? "True" : "False" });
/** It halted: how (`cause`: shutdown, killed, crashed, as libvirt's stopped event's detail) and what ended it (`detail`). */
export const domainShutdown = (vm: Named, halt: HaltReason): NewEvent => told(vm, "domain-shutdown", { cause: halt.cause, detail: halt.detail });
