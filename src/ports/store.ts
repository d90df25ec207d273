/** The store port: the durable state of the host. */

export interface HostRecord {
  /** A UUID made when the state was first created. */
  hostId: string;
  /** When the state was first created. */
  createdAt: Date;
}

export interface Store {
  /** The host's own record, made by the first start on a data folder. */
  host(): HostRecord;
  /** Flushes and releases the state; the store is unusable afterwards. */
  close(): void;
}
