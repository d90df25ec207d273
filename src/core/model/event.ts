/** An event as a change tells of it, in Qubes' vocabulary (domain-start, property-set:netvm…). */
export interface NewEvent {
  /** The VM's name; empty for the host. */
  subject: string;
  name: string;
  kwargs: Readonly<Record<string, string>>;
}

/** An event as the log keeps it. */
export interface StoredEvent extends NewEvent {
  sequence: number;
  time: Date;
}
