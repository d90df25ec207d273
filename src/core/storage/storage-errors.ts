import { alreadyExists, declareReasons, DomainError, failedPrecondition, InvalidFieldError } from "../errors";

/** Reasons of the storage area: pools and the volumes the core keeps in them. */
const R = declareReasons("storage", ["POOL_EXISTS", "POOL_IN_USE", "POOL_OVER_LIMIT", "POOL_UNAVAILABLE"]);

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

/** A pool whose driver could not open at start (its folder unmounted, say): nothing can use it until it can. */
export function poolUnavailable(pool: string, cause: string): DomainError {
  return failedPrecondition(R.POOL_UNAVAILABLE, `pool ${pool} cannot be used: ${cause}`, { pool });
}

/** A pool parameter the core reads itself (revisions_to_keep, ephemeral_volatile) that is not of its type. */
export function invalidPoolParameter(parameter: string, description: string): InvalidFieldError {
  return new InvalidFieldError(`parameters[${parameter}]`, description);
}
