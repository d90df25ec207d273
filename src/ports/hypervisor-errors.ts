import { declareReasons, DomainError, failedPrecondition } from "../core/errors";

/** Reasons a hypervisor driver gives. */
const R = declareReasons("hypervisor", [
  "START_ABORTED",
  "HYPERVISOR_UNAVAILABLE",
  "ACCELERATOR_UNUSABLE",
  "HYPERVISOR_USER_MISSING",
  "RUN_FOLDER_TOO_DEEP",
  "KERNEL_MISSING",
  "KERNEL_UNREADABLE",
  "GUEST_AGENT_ABSENT",
  "GUEST_CANNOT_SLEEP",
  "CONSOLE_READER_TOO_SLOW",
]);

/** The VM was killed (or halted) while it started: the start did not happen. */
export function startAborted(vm: string): DomainError {
  return new DomainError("aborted", R.START_ABORTED, `${vm} was stopped while it started`, { vm });
}

/** The hypervisor's program is not installed (or could not be run). */
export function hypervisorUnavailable(vm: string, why: string): DomainError {
  return failedPrecondition(R.HYPERVISOR_UNAVAILABLE, `cannot start ${vm}: ${why}`, { vm });
}

/** The accelerator the driver chose cannot run guests now (/dev/kvm went away, or refuses this process). */
export function acceleratorUnusable(vm: string, accelerator: string, why: string): DomainError {
  return failedPrecondition(R.ACCELERATOR_UNUSABLE, `cannot start ${vm}: the ${accelerator} accelerator is not usable: ${why}`, { vm, accelerator });
}

/** The unprivileged user the hypervisor runs as does not exist on the host. */
export function hypervisorUserMissing(vm: string, user: string): DomainError {
  return failedPrecondition(
    R.HYPERVISOR_USER_MISSING,
    `cannot start ${vm}: QEMU runs as the user ${user}, which does not exist; make it (scripts/install-system-deps does) or name another with --qemu-user`,
    { vm, user },
  );
}

/** The VM's sockets would not fit in a unix socket address under the data folder. */
export function runFolderTooDeep(vm: string, socket: string, max: number): DomainError {
  return failedPrecondition(R.RUN_FOLDER_TOO_DEEP, `cannot start ${vm}: its socket ${socket} is longer than the ${max} bytes a unix socket's path may have; use a shorter --data-dir`, {
    vm,
    path: socket,
  });
}

/** The kernel the VM boots is not in the host's kernel folder. */
export function kernelMissing(vm: string, kernel: string, file: string): DomainError {
  return failedPrecondition(R.KERNEL_MISSING, `cannot start ${vm}: its kernel ${kernel} has no ${file} in the kernel folder`, { vm, kernel });
}

/** A kernel folder's file that the user QEMU runs as may not read (QEMU opens it again through the descriptor Steward hands, which checks its mode). */
export function kernelUnreadable(vm: string, kernel: string, file: string, user: string, mode: number): DomainError {
  const octal = (mode & 0o777).toString(8).padStart(4, "0");
  return failedPrecondition(R.KERNEL_UNREADABLE, `cannot start ${vm}: ${file} of its kernel ${kernel} (mode ${octal}) is not readable by ${user}, whom QEMU runs as: make it readable by all (0644)`, { vm, kernel, file });
}

/** What was asked needs the guest agent, which does not answer in this guest. */
export function guestAgentAbsent(vm: string, what: string): DomainError {
  return failedPrecondition(R.GUEST_AGENT_ABSENT, `cannot ${what} of ${vm}: its guest agent does not answer (run qemu-guest-agent in the guest)`, { vm });
}

/** The guest cannot sleep (S3): it does not offer it, or its agent says it cannot. */
export function guestCannotSleep(vm: string, why: string): DomainError {
  return failedPrecondition(R.GUEST_CANNOT_SLEEP, `${vm} cannot be suspended: ${why}`, { vm });
}

/** A console reader fell too far behind the guest's output, and was cut off rather than hold the guest or the other readers up. */
export function consoleReaderTooSlow(limitBytes: number): DomainError {
  return new DomainError(
    "resource-exhausted",
    R.CONSOLE_READER_TOO_SLOW,
    `the console reader fell more than ${limitBytes} bytes behind the guest's output, and was cut off; read faster, or join the console again`,
    { limit_bytes: String(limitBytes) },
  );
}
