import type { EventSubject, NewEvent } from "../model/event";

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
export const domainShutdown = (vm: Named): NewEvent => told(vm, "domain-shutdown");
