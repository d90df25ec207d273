import { alreadyExists, declareReasons, DomainError, failedPrecondition, InvalidFieldError, notFound } from "../core/errors";

/**
 * Reasons of the storage-driver port: its volumes and revisions, and the registry of pool
 * drivers. The catalog is not "storage", so that the core's storage area, when it declares its
 * own catalog, cannot declare one of these words again by accident: it uses these factories.
 */
const R = declareReasons("storage-driver", [
  "VOLUME_NOT_FOUND",
  "VOLUME_EXISTS",
  "INVALID_VOLUME_ID",
  "INVALID_VOLUME_SIZE",
  "VOLUME_SHRINK",
  "VOLUME_OUT_OF_RANGE",
  "REVISION_NOT_FOUND",
  "POOL_FULL",
  "VOLUME_PATH_UNSAFE",
  "POOL_LOCATION_UNUSABLE",
  "POOL_DRIVER_NOT_FOUND",
  "INVALID_POOL_DRIVER_PARAMETER",
  "IMAGE_INVALID",
  "IMAGE_NOT_FOUND",
  "INVALID_IMAGE_NAME",
  "BITMAP_NOT_FOUND",
  "BITMAP_EXISTS",
]);

/** A volume without a dirty bitmap of that name. */
export function bitmapNotFound(volume: string, bitmap: string): DomainError {
  return notFound(R.BITMAP_NOT_FOUND, `${volume} has no bitmap ${bitmap}`, { volume, bitmap });
}

export function bitmapExists(volume: string, bitmap: string): DomainError {
  return alreadyExists(R.BITMAP_EXISTS, `${volume} has a bitmap ${bitmap} already`, { volume, bitmap });
}

export function volumeNotFound(vid: string): DomainError {
  return notFound(R.VOLUME_NOT_FOUND, `no volume ${vid}`, { vid });
}

export function volumeExists(vid: string): DomainError {
  return alreadyExists(R.VOLUME_EXISTS, `a volume ${vid} exists`, { vid });
}

/** Whether `error` says that a volume has no content in its pool (VOLUME_NOT_FOUND). */
export function isVolumeNotFound(error: unknown): boolean {
  return error instanceof DomainError && error.reason === R.VOLUME_NOT_FOUND;
}

/** Whether `error` says that a volume's content is there already (VOLUME_EXISTS). */
export function isVolumeExists(error: unknown): boolean {
  return error instanceof DomainError && error.reason === R.VOLUME_EXISTS;
}

const VID_FORM = "path segments of letters, digits, '_', '.' or '-' (not . or ..), of at most 128 characters each and 512 in all, joined by '/'";

export function invalidVid(vid: string): DomainError {
  return new DomainError("invalid-argument", R.INVALID_VOLUME_ID, `${JSON.stringify(vid)} is not a vid: ${VID_FORM}`, { vid });
}

/** A request's vid that isValidVid refuses, naming the request's field. */
export function invalidVidField(field: string, vid: string): InvalidFieldError {
  return new InvalidFieldError(field, `${JSON.stringify(vid)} is not a vid: ${VID_FORM}`, R.INVALID_VOLUME_ID);
}

/** A size the pool cannot hold however much room it has: past its filesystem's largest file, or its format's largest image. */
export function volumeTooLarge(vid: string, why: string): DomainError {
  return new DomainError("invalid-argument", R.INVALID_VOLUME_SIZE, `${vid} cannot be that large in its pool: ${why}`, { vid });
}

/** A size that is not a byte count: negative, fractional, or past 2^53. */
export function invalidVolumeSize(vid: string, sizeBytes: number): DomainError {
  return new DomainError("invalid-argument", R.INVALID_VOLUME_SIZE, `${sizeBytes} is not a size in bytes for ${vid}`, { vid, size_bytes: String(sizeBytes) });
}

/** Shrinking would cut the end of the volume off; the proto's ResizeVolume names it VOLUME_SHRINK. */
export function shrinkRefused(vid: string, sizeBytes: number, requestedBytes: number): DomainError {
  return failedPrecondition(R.VOLUME_SHRINK, `${vid} is ${sizeBytes} bytes: it cannot shrink to ${requestedBytes}`, {
    vid,
    size_bytes: String(sizeBytes),
    requested_bytes: String(requestedBytes),
  });
}

/** A read or write of `length` bytes at `offset` that does not lie within the volume's `sizeBytes`. */
export function outOfRange(vid: string, offset: number, length: number, sizeBytes: number): DomainError {
  return new DomainError("out-of-range", R.VOLUME_OUT_OF_RANGE, `${length} bytes at ${offset} are not within ${vid}, which is ${sizeBytes} bytes`, {
    vid,
    offset: String(offset),
    length: String(length),
    size_bytes: String(sizeBytes),
  });
}

export function revisionNotFound(vid: string, revision: string): DomainError {
  return notFound(R.REVISION_NOT_FOUND, `${vid} has no revision ${revision}`, { vid, revision });
}

/** The pool has no room left for `vid`'s bytes; unlike a quota (the core's), this is the driver's own limit. */
export function poolFull(vid: string, capacityBytes: number): DomainError {
  return new DomainError("resource-exhausted", R.POOL_FULL, `no room for the bytes of ${vid}: the pool holds at most ${capacityBytes} bytes`, {
    vid,
    capacity_bytes: String(capacityBytes),
  });
}

/** The pool's filesystem ran out of room (ENOSPC, EDQUOT) while writing `vid`'s bytes: nothing was changed. */
export function noRoomOnDisk(vid: string, folder: string): DomainError {
  return new DomainError("resource-exhausted", R.POOL_FULL, `no room for the bytes of ${vid}: the filesystem of the pool's folder ${folder} is full`, { vid });
}

/**
 * A volume's path in its pool's folder leads somewhere else: a symlink or a foreign file where
 * the pool keeps its own (planted by someone else), or a qcow2 backing file outside the pool.
 */
export function unsafeVolumePath(vid: string, what: string): DomainError {
  return new DomainError("invalid-argument", R.VOLUME_PATH_UNSAFE, `the pool will not use ${vid}: ${what}`, { vid });
}

/** An image a client sent that the pool will not take: not of its format, damaged, or leading to other files. */
export function invalidImage(vid: string, why: string): InvalidFieldError {
  return new InvalidFieldError("header.format", `the image imported into ${vid} is refused: ${why}`, R.IMAGE_INVALID);
}

/** A driver cannot keep a pool where its parameters say: AddPool's POOL_LOCATION_UNUSABLE. */
export function poolLocationUnusable(folder: string, why: string): DomainError {
  return failedPrecondition(R.POOL_LOCATION_UNUSABLE, `a pool cannot be kept in ${folder}: ${why}`, { dir_path: folder });
}

/** AddPool names a driver that is not there; the proto says INVALID_ARGUMENT, naming the field. */
export function unknownPoolDriver(name: string): InvalidFieldError {
  return new InvalidFieldError("driver", `no pool driver named ${JSON.stringify(name)}`, R.POOL_DRIVER_NOT_FOUND);
}

/** A driver parameter that is unknown, missing, or not of its type. */
export function invalidDriverParameter(parameter: string, description: string): InvalidFieldError {
  return new InvalidFieldError(`parameters[${parameter}]`, description, R.INVALID_POOL_DRIVER_PARAMETER);
}

/** No image of that name in Steward's images folder. */
export function imageNotFound(file: string): DomainError {
  return notFound(R.IMAGE_NOT_FOUND, `no image ${file} in Steward's images folder`, { image: file });
}

export function invalidImageName(field: string, file: string, why = 'a file name of letters, digits, "_", "+", "-" and ".", not starting with ".", without "/"'): InvalidFieldError {
  return new InvalidFieldError(field, `${JSON.stringify(file)} is not an image's name: ${why}`, R.INVALID_IMAGE_NAME);
}
