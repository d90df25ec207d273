import { declareReasons, DomainError, failedPrecondition } from "../core/errors";

/** Reasons a block exporter gives: what QEMU refuses, and a host that cannot export. */
const R = declareReasons("block-exporter", ["EXPORT_IN_USE", "EXPORTER_UNAVAILABLE", "EXPORT_REFUSED"]);

/** SAFE removal of an export that clients are connected to (QEMU's "still in use"). */
export function exportInUse(id: string): DomainError {
  return failedPrecondition(R.EXPORT_IN_USE, `export ${id} has clients connected: remove it in mode HARD to drop them`, { id });
}

/** The storage daemon could not be started or reached (qemu-storage-daemon missing, or exiting at start). */
export function exporterUnavailable(why: string): DomainError {
  return failedPrecondition(R.EXPORTER_UNAVAILABLE, `volumes cannot be exported on this host: ${why}`);
}

/**
 * QEMU refused a command for a reason of the host, not of the request (a file it may not open,
 * an address in use): its words are passed on.
 */
export function exportRefused(what: string, qemuSays: string): DomainError {
  return new DomainError("failed-precondition", R.EXPORT_REFUSED, `QEMU refused to ${what}: ${qemuSays}`, { qemu: qemuSays });
}
