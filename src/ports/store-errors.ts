import { declareReasons, DomainError } from "../core/errors";

/** Reasons the store gives. */
const R = declareReasons("store", ["NO_FREE_QID"]);

export function noFreeQid(maxQid: number): DomainError {
  return new DomainError("resource-exhausted", R.NO_FREE_QID, `all ${maxQid} qids are in use`);
}
