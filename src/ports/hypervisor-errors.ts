import { declareReasons, DomainError } from "../core/errors";

/** Reasons a hypervisor driver gives. */
const R = declareReasons("hypervisor", ["START_ABORTED"]);

/** The VM was killed (or halted) while it started: the start did not happen. */
export function startAborted(vm: string): DomainError {
  return new DomainError("aborted", R.START_ABORTED, `${vm} was stopped while it started`, { vm });
}
