import { declareReasons, DomainError, failedPrecondition, InvalidFieldError } from "../errors";
import type { PowerState } from "../model/power-state";

/** Reasons of starting, stopping and pausing VMs. */
const R = declareReasons("lifecycle", ["VM_BAD_STATE", "NETVM_NOT_RUNNING", "NETVM_CHAIN_TOO_LONG", "START_FAILED", "SHUTDOWN_TIMEOUT", "KILL_FAILED", "CAPABILITY_MISSING", "INVALID_SIGNAL", "INVALID_KILL_WHO", "CONSOLE_BUSY", "STATS_INTERVAL_TOO_SHORT"]);

interface Named {
  name: string;
}

/** The power state does not allow what was asked (`action`: start, shut down, pause…). */
export function vmBadState(vm: Named, action: string, state: PowerState): DomainError {
  return failedPrecondition(R.VM_BAD_STATE, `cannot ${action} ${vm.name}: it is ${state}`, { vm: vm.name, state });
}

export function netvmNotRunning(vm: Named, netvm: Named, state: PowerState): DomainError {
  return failedPrecondition(R.NETVM_NOT_RUNNING, `${vm.name}'s netvm ${netvm.name} is ${state}`, { vm: vm.name, netvm: netvm.name, state });
}

export function netvmChainTooLong(vm: Named, max: number): DomainError {
  return failedPrecondition(R.NETVM_CHAIN_TOO_LONG, `${vm.name}'s network goes through more than ${max} netvms`, { vm: vm.name, max: String(max) });
}

export function startFailed(vm: Named, reason: string): DomainError {
  // Not UNAVAILABLE (AIP-193): the same start is not expected to work when merely retried.
  return failedPrecondition(R.START_FAILED, `${vm.name} failed to start: ${reason}`, { vm: vm.name });
}

export function shutdownTimeout(vm: Named, timeoutMs: number): DomainError {
  // Not DEADLINE_EXCEEDED (AIP-193), which says the caller's own deadline passed: the VM's did.
  return failedPrecondition(R.SHUTDOWN_TIMEOUT, `${vm.name} did not halt within ${timeoutMs / 1000} s; it is still running`, {
    vm: vm.name,
    timeout_ms: String(timeoutMs),
  });
}

export function killFailed(vm: Named): DomainError {
  return new DomainError("unavailable", R.KILL_FAILED, `${vm.name} did not stop when killed`, { vm: vm.name });
}

/** The hypervisor does not offer this for the VM's guest. */
export function capabilityMissing(vm: Named & { klass?: string }, capability: string): DomainError {
  const why = vm.klass === "AdminVM" ? `${vm.name} is the AdminVM, the host itself, which no hypervisor runs: it has no ${capability}` : `the hypervisor offers no ${capability} for ${vm.name}`;
  return failedPrecondition(R.CAPABILITY_MISSING, why, { vm: vm.name, capability });
}

export function invalidSignal(signal: number): InvalidFieldError {
  return new InvalidFieldError("signal", `${signal} is not a signal: give 1 to 64, or 0 for SIGKILL`, R.INVALID_SIGNAL);
}

export function invalidKillWho(who: number): InvalidFieldError {
  return new InvalidFieldError("who", `unknown KillWho ${who}`, R.INVALID_KILL_WHO);
}

/** Another session types into the VM's console: one writer at a time. */
export function consoleBusy(vm: Named, caller: string, requestId: string): DomainError {
  return failedPrecondition(R.CONSOLE_BUSY, `${caller} types into the console of ${vm.name} (request ${requestId}); one session at a time may, until it ends`, {
    vm: vm.name,
    writer: caller,
    writer_request_id: requestId,
  });
}

/** A stats watch's interval is under the shortest one Steward samples at. */
export function statsIntervalTooShort(intervalMs: number, minMs: number): InvalidFieldError {
  return new InvalidFieldError("interval", `must be at least ${minMs} ms, not ${intervalMs} ms`, R.STATS_INTERVAL_TOO_SHORT, { min_ms: String(minMs) });
}
