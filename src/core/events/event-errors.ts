import { declareReasons, DomainError, InvalidFieldError } from "../errors";

/** Reasons of the Events stream. */
const R = declareReasons("events", ["EVENTS_AHEAD", "EVENTS_EXPIRED", "SUBSCRIBER_TOO_SLOW", "INVALID_NAME_PREFIXES"]);

/** An Events request's name_prefixes: a documented number of non-empty prefixes of bounded length. */
export function invalidNamePrefixes(description: string, limit?: number): InvalidFieldError {
  return new InvalidFieldError("name_prefixes", description, R.INVALID_NAME_PREFIXES, limit === undefined ? {} : { limit: String(limit) });
}

export function eventsAhead(after: number, latest: number): DomainError {
  return new DomainError("out-of-range", R.EVENTS_AHEAD, `after_sequence ${after} is past the latest event, ${latest}: this is not the log you followed`, {
    after_sequence: String(after),
    latest_sequence: String(latest),
  });
}

export function eventsExpired(after: number, oldest: number): DomainError {
  return new DomainError(
    "out-of-range",
    R.EVENTS_EXPIRED,
    `the events after ${after} are no longer kept (the oldest kept is ${oldest}): list the current state again, then follow`,
    { after_sequence: String(after), oldest_sequence: String(oldest) },
  );
}

export function subscriberTooSlow(buffer: number, lastTaken: number): DomainError {
  return new DomainError("resource-exhausted", R.SUBSCRIBER_TOO_SLOW, `this client fell ${buffer} events behind; reconnect with after_sequence to resume`, {
    after_sequence: String(lastTaken),
  });
}
