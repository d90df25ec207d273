import { declareReasons, DomainError, failedPrecondition } from "../errors";
import type { PowerState } from "../model/power-state";

/** Reasons of starting, stopping and pausing VMs. */
const R = declareReasons("lifecycle", ["VM_BAD_STATE", "NETVM_NOT_RUNNING", "NETVM_CHAIN_TOO_LONG", "START_FAILED", "SHUTDOWN_TIMEOUT", "KILL_FAILED", "CAPABILITY_MISSING"]);

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
  return new DomainError("unavailable", R.START_FAILED, `${vm.name} failed to start: ${reason}`, { vm: vm.name });
}

export function shutdownTimeout(vm: Named, timeoutMs: number): DomainError {
  return new DomainError("deadline-exceeded", R.SHUTDOWN_TIMEOUT, `${vm.name} did not halt within ${timeoutMs / 1000} s; it is still running`, {
    vm: vm.name,
    timeout_ms: String(timeoutMs),
  });
}

export function killFailed(vm: Named): DomainError {
  return new DomainError("unavailable", R.KILL_FAILED, `${vm.name} did not stop when killed`, { vm: vm.name });
}

/** The hypervisor does not offer this for the VM's guest. */
export function capabilityMissing(vm: Named, capability: string): DomainError {
  return failedPrecondition(R.CAPABILITY_MISSING, `the hypervisor offers no ${capability} for ${vm.name}`, { vm: vm.name, capability });
}
