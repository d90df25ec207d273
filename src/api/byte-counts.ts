import { InvalidFieldError } from "../core/errors";

/** The largest byte count Steward takes: 2^53 - 1 bytes (8 PiB), what a number holds exactly. */
const MAX_BYTES = BigInt(Number.MAX_SAFE_INTEGER);

/** A uint64 byte count of a request as a number; INVALID_ARGUMENT naming `field` past 8 PiB. */
export function byteCount(value: bigint, field: string): number {
  if (value > MAX_BYTES) throw new InvalidFieldError(field, `${value} bytes is more than Steward handles (at most ${MAX_BYTES})`);
  return Number(value);
}
