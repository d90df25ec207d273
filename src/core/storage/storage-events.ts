import { HOST_SUBJECT, type EventSubject, type NewEvent } from "../model/event";

/** The events of pools (docs/EVENTS.md, Storage): about the host. */
function about(subject: EventSubject, name: string, kwargs: Readonly<Record<string, string>>): NewEvent {
  return { subject: subject.name, subjectUuid: subject.uuid, name, kwargs };
}

export function poolAdd(pool: string, driver: string): NewEvent {
  return about(HOST_SUBJECT, "pool-add", { pool, driver });
}

export function poolDelete(pool: string): NewEvent {
  return about(HOST_SUBJECT, "pool-delete", { pool });
}

export function poolSet(pool: string, property: string, newValue: string, oldValue: string): NewEvent {
  return about(HOST_SUBJECT, `pool-set:${property}`, { pool, newvalue: newValue, oldvalue: oldValue });
}
