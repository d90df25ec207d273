import { alreadyExists, declareReasons, DomainError, failedPrecondition, InvalidFieldError, notFound } from "../errors";

/** Reasons of the storage area: pools and the volumes the core keeps in them. */
const R = declareReasons("storage", [
  "POOL_EXISTS",
  "POOL_IN_USE",
  "POOL_OVER_LIMIT",
  "POOL_QUOTA_EXCEEDED",
  "POOL_UNAVAILABLE",
  "POOL_READ_ONLY",
  "INVALID_VOLUME_REF",
  "VOLUME_LIMIT_EXCEEDED",
  "VOLUME_OVER_LIMIT",
  "VOLUME_IN_USE",
  "CHECKSUM_MISMATCH",
  "VOLUME_ATTACHED",
  "VOLUME_NOT_ATTACHED",
  "VOLUME_OWNED",
  "DISK_NAME_TAKEN",
  "INVALID_DISK_NAME",
  "EPHEMERAL_UNSUPPORTED",
  "VOLUME_READ_ONLY",
  "BITMAPS_UNSUPPORTED",
]);

/** A dirty bitmap asked of a pool whose images keep none (raw ones). */
export function bitmapsUnsupported(pool: string, format: string): DomainError {
  return failedPrecondition(R.BITMAPS_UNSUPPORTED, `pool ${pool} keeps its volumes ${format}, which holds no dirty bitmaps: a qcow2 pool's volumes do`, { pool });
}

/** NOT_FOUND (POOL_NOT_FOUND): declared where CreateVm first needed it. */
export { poolNotFound } from "../vms/vm-errors";

export function poolExists(pool: string): DomainError {
  return alreadyExists(R.POOL_EXISTS, `a pool named ${pool} exists`, { pool });
}

/** INVALID_ARGUMENT (INVALID_POOL_NAME): declared where a pool property first needed it. */
export { invalidPoolName } from "../vms/properties/property-errors";

/** RemovePool of a pool that holds volumes, or that a global property names. */
export function poolInUse(pool: string, why: string): DomainError {
  return failedPrecondition(R.POOL_IN_USE, `pool ${pool} is in use: ${why}`, { pool });
}

export function poolOverLimit(pool: string, usedBytes: number, limitBytes: number): DomainError {
  return failedPrecondition(R.POOL_OVER_LIMIT, `pool ${pool} uses ${usedBytes} bytes already, more than a limit of ${limitBytes}`, {
    pool,
    used_bytes: String(usedBytes),
    limit_bytes: String(limitBytes),
  });
}

/** A change that would take the pool past its limit (SetPoolLimit): RESOURCE_EXHAUSTED, naming the limit and the bytes. */
export function poolQuotaExceeded(pool: string, limitBytes: number, usedBytes: number, neededBytes: number): DomainError {
  return new DomainError(
    "resource-exhausted",
    R.POOL_QUOTA_EXCEEDED,
    `pool ${pool} may take at most ${limitBytes} bytes (its limit); it takes ${usedBytes}, and this needs ${neededBytes} more`,
    { pool, limit_bytes: String(limitBytes), used_bytes: String(usedBytes), needed_bytes: String(neededBytes) },
  );
}

/** A pool whose driver could not open at start (its folder unmounted, say): nothing can use it until it can. */
export function poolUnavailable(pool: string, cause: string): DomainError {
  return failedPrecondition(R.POOL_UNAVAILABLE, `pool ${pool} cannot be used: ${cause}`, { pool });
}

/** A pool parameter the core reads itself (revisions_to_keep, ephemeral_volatile) that is not of its type. */
export function invalidPoolParameter(parameter: string, description: string): InvalidFieldError {
  return new InvalidFieldError(`parameters[${parameter}]`, description);
}

/** A VolumeRef that names a volume both ways, or neither. */
export function invalidVolumeRef(field: string): InvalidFieldError {
  return new InvalidFieldError(field, "name a volume by vm and name, or by pool and vid: one of the two", R.INVALID_VOLUME_REF);
}

export function volumeLimitExceeded(vid: string, limitBytes: number, neededBytes: number): DomainError {
  return new DomainError("resource-exhausted", R.VOLUME_LIMIT_EXCEEDED, `${vid} may be at most ${limitBytes} bytes (its limit); ${neededBytes} were asked`, {
    vid,
    limit_bytes: String(limitBytes),
    needed_bytes: String(neededBytes),
  });
}

export function volumeOverLimit(vid: string, sizeBytes: number, limitBytes: number): DomainError {
  return failedPrecondition(R.VOLUME_OVER_LIMIT, `${vid} is ${sizeBytes} bytes already, more than a limit of ${limitBytes}`, {
    vid,
    size_bytes: String(sizeBytes),
    limit_bytes: String(limitBytes),
  });
}

/** DeleteVolume of a VM's own volume: RemoveVm deletes it. */
export function volumeOwnedByVm(vid: string, vm: string): DomainError {
  return failedPrecondition(R.VOLUME_IN_USE, `${vid} is the volume of VM ${vm}: it goes with the VM`, { vid, vm });
}

/** An import whose bytes are not those the client said: nothing was changed. */
export function checksumMismatch(vid: string, expected: string, actual: string): DomainError {
  return new DomainError("data-loss", R.CHECKSUM_MISMATCH, `the bytes imported into ${vid} have SHA-256 ${actual}, not ${expected}: the volume is as it was`, { vid, expected, actual });
}

/** A change or removal of a volume that a block export serves: QEMU holds it open, and would serve what is no longer there. */
export function volumeExported(vid: string, exportIds: readonly string[]): DomainError {
  return failedPrecondition(R.VOLUME_IN_USE, `${vid} is in use: block export ${exportIds.join(", ")} serves it: RemoveBlockExport first`, { vid, exports: exportIds.join(",") });
}

/** A volume other VMs use in a way that excludes what was asked (a writable attachment, a write). */
export function volumeInUse(vid: string, why: string, vms: readonly string[]): DomainError {
  return failedPrecondition(R.VOLUME_IN_USE, `${vid} is in use: ${why}`, { vid, vms: vms.join(",") });
}

/** AttachVolume of a volume the VM has attached already, as another disk or otherwise. */
export function volumeAttached(vid: string, vm: string, as: string): DomainError {
  return failedPrecondition(R.VOLUME_ATTACHED, `${vid} is attached to ${vm} already, as ${as}: detach it first to attach it otherwise`, { vid, vm, name: as });
}

export function volumeNotAttached(vm: string, name: string): DomainError {
  return notFound(R.VOLUME_NOT_ATTACHED, `${vm} has no volume attached as ${name}`, { vm, name });
}

/** Attach or detach of a VM's own volume (root, private…): it is the VM's, not an extra disk. */
export function volumeOwned(vm: string, name: string): DomainError {
  return failedPrecondition(R.VOLUME_OWNED, `${name} is ${vm}'s own volume, not an attached one: it comes and goes with the VM`, { vm, name });
}

export function diskNameTaken(vm: string, name: string): DomainError {
  return alreadyExists(R.DISK_NAME_TAKEN, `${vm} has a disk named ${name}`, { vm, name });
}

export function invalidDiskName(field: string, description: string): InvalidFieldError {
  return new InvalidFieldError(field, description, R.INVALID_DISK_NAME);
}

/** A start that would put an ephemeral volume in a pool whose driver cannot encrypt it. */
export function ephemeralUnsupported(pool: string, vid: string): DomainError {
  return failedPrecondition(R.EPHEMERAL_UNSUPPORTED, `${vid} is ephemeral, but pool ${pool} cannot encrypt its volumes: make it not ephemeral, or put it in a pool of files`, { pool, vid });
}

/** The linux-kernel pool: the host's kernel folder, which only the host's administrator changes. */
export function poolReadOnly(pool: string, location: string): DomainError {
  return failedPrecondition(R.POOL_READ_ONLY, `pool ${pool} is the host's kernel folder${location === "" ? "" : ` (${location})`}, read-only: a kernel comes with its folder there, holding its modules.img`, { pool });
}

/** A volume of the linux-kernel pool: a kernel's modules. */
export function kernelModulesReadOnly(pool: string, kernel: string): DomainError {
  return failedPrecondition(R.VOLUME_READ_ONLY, `volume ${kernel} of pool ${pool} is the modules of kernel ${kernel} from the host's kernel folder, read-only`, { pool, kernel });
}

/** A change of a VM's kernel volume: the host's kernel's modules, which follow the VM's kernel property. */
export function kernelVolumeReadOnly(vm: string, kernel: string): DomainError {
  return failedPrecondition(R.VOLUME_READ_ONLY, `${vm}'s kernel volume is the modules of kernel ${kernel} from the host's kernel folder, read-only: set ${vm}'s kernel property to change it`, { vm, kernel });
}
