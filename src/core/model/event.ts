/** What an event is about: a VM, by its name and uuid, or the host (both empty). */
export interface EventSubject {
  name: string;
  uuid: string;
}

/** The subject of the host's own events (labels, global properties). */
export const HOST_SUBJECT: EventSubject = Object.freeze({ name: "", uuid: "" });

/** An event as a change tells of it, in Qubes' vocabulary (domain-start, property-set:netvm…). */
export interface NewEvent {
  /** The VM's name; empty for the host. */
  subject: string;
  /** The VM's uuid; empty for the host. */
  subjectUuid: string;
  name: string;
  kwargs: Readonly<Record<string, string>>;
}

/** An event as the log keeps it. */
export interface StoredEvent extends NewEvent {
  sequence: number;
  time: Date;
}
