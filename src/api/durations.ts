import type { Duration } from "@bufbuild/protobuf/wkt";
import { InvalidFieldError } from "../core/errors";

/** The most seconds a google.protobuf.Duration holds: 10,000 years. */
const MAX_DURATION_SECONDS = 315_576_000_000n;

/** A request's Duration in milliseconds; INVALID_ARGUMENT naming the field when negative or past what a Duration holds. */
export function durationMs(duration: Duration, field: string): number {
  if (duration.seconds < 0n || duration.nanos < 0) throw new InvalidFieldError(field, "must not be negative");
  if (duration.seconds > MAX_DURATION_SECONDS) throw new InvalidFieldError(field, "a Duration holds at most 315,576,000,000 seconds (10,000 years)");
  return Number(duration.seconds) * 1000 + Math.floor(duration.nanos / 1e6);
}
