import { alreadyExists, declareReasons, DomainError, failedPrecondition, InvalidFieldError, notFound } from "../errors";

/** Reasons of the exports area: the NBD server and the block exports (BlockExportService). */
const R = declareReasons("exports", [
  "NBD_SERVER_RUNNING",
  "NBD_SERVER_NOT_RUNNING",
  "INVALID_NBD_ADDRESS",
  "TLS_REQUIRED",
  "TLS_CREDS_NOT_FOUND",
  "INVALID_EXPORT_ID",
  "EXPORT_EXISTS",
  "EXPORT_NOT_FOUND",
  "EXPORT_OPTIONS_MISMATCH",
  "EXPORT_TYPE_UNSUPPORTED",
  "VOLUME_NOT_EXPORTABLE",
]);

/** NOT_FOUND (BITMAP_NOT_FOUND): declared by the storage drivers, which keep the bitmaps. */
export { bitmapNotFound } from "../../ports/storage-errors";

export function nbdServerRunning(address: string): DomainError {
  return failedPrecondition(R.NBD_SERVER_RUNNING, `the NBD server runs already, on ${address}: stop it first`, { address });
}

export function nbdServerNotRunning(id: string): DomainError {
  return failedPrecondition(R.NBD_SERVER_NOT_RUNNING, `export ${id} is of type NBD, and no NBD server runs: StartNbdServer first`, { id });
}

export function invalidNbdAddress(why: string): InvalidFieldError {
  return new InvalidFieldError("address", why, R.INVALID_NBD_ADDRESS);
}

/** A server on an address other hosts reach, without TLS: anyone there could read the volumes. */
export function tlsRequired(address: string): InvalidFieldError {
  return new InvalidFieldError("tls", `is required for ${address}, which is not a loopback address: clients elsewhere must speak TLS`, R.TLS_REQUIRED, { address });
}

export function tlsCredsNotFound(name: string, folder: string): DomainError {
  return notFound(R.TLS_CREDS_NOT_FOUND, `no NBD credentials named ${name}: ${folder} must hold ca-cert.pem, server-cert.pem and server-key.pem`, { tls_creds: name });
}

export function invalidExportId(field: string): InvalidFieldError {
  return new InvalidFieldError(field, "must be a letter, then letters, digits, '_', '.' or '-', at most 64 characters", R.INVALID_EXPORT_ID);
}

export function exportExists(id: string): DomainError {
  return alreadyExists(R.EXPORT_EXISTS, `an export ${id} exists`, { id });
}

/** Another export holds the NBD name, the socket or the mount point asked for. */
export function exportEndpointTaken(field: string, what: string, holder: string): DomainError {
  return alreadyExists(R.EXPORT_EXISTS, `${field}: export ${holder} has ${what} already`, { field, id: holder });
}

export function exportNotFound(id: string): DomainError {
  return notFound(R.EXPORT_NOT_FOUND, `no export ${id}`, { id });
}

export function exportOptionsMismatch(field: string, type: string): InvalidFieldError {
  return new InvalidFieldError(field, `are not options of type ${type}: give the options of the export's type`, R.EXPORT_OPTIONS_MISMATCH, { type });
}

export function exportTypeUnsupported(type: string, supported: readonly string[]): DomainError {
  return failedPrecondition(R.EXPORT_TYPE_UNSUPPORTED, `this host's QEMU cannot export ${type}; it can export ${supported.join(", ") || "nothing"} (GetHostInfo tells)`, { type });
}

export function volumeNotExportable(volume: string, why: string): DomainError {
  return failedPrecondition(R.VOLUME_NOT_EXPORTABLE, `${volume} cannot be exported: ${why}`, { volume });
}
