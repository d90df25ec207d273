import type { Database } from "better-sqlite3";
import { StatementCache } from "./statement-cache";
import type { NewEvent, StoredEvent } from "../../../core/model/event";
import type { EventRepository, RememberedRequest, RequestRepository } from "../../../ports/store";

interface EventRow {
  sequence: number;
  time: string;
  subject: string;
  subject_uuid: string;
  name: string;
  kwargs: string;
}

/** The event log: written in the same transaction as the change it tells of. */
export class SqliteEventRepository implements EventRepository {
  /** Events appended by the transaction under way, published once it commits. */
  private pending: StoredEvent[] = [];

  private readonly sql: StatementCache;

  constructor(private readonly db: Database) {
    this.sql = new StatementCache(db);
  }

  append(event: NewEvent, time: Date): number {
    if (!this.db.inTransaction) throw new Error("events are appended within the transaction of their change");
    const result = this.sql
      .prepare("INSERT INTO events (time, subject, subject_uuid, name, kwargs) VALUES (?, ?, ?, ?, ?)")
      .run(time.toISOString(), event.subject, event.subjectUuid, event.name, JSON.stringify(event.kwargs));
    const sequence = Number(result.lastInsertRowid);
    this.pending.push({ ...event, sequence, time });
    return sequence;
  }

  latestSequence(): number {
    // AUTOINCREMENT keeps the highest number ever given in sqlite_sequence, even once trimmed.
    const row = this.sql.prepare<[], { seq: number }>("SELECT seq FROM sqlite_sequence WHERE name = 'events'").get();
    return row?.seq ?? 0;
  }

  oldestSequence(): number {
    const row = this.sql.prepare<[], { sequence: number | null }>("SELECT MIN(sequence) AS sequence FROM events").get();
    return row?.sequence ?? this.latestSequence() + 1;
  }

  after(sequence: number, limit: number): StoredEvent[] {
    return this.sql
      .prepare<[number, number], EventRow>("SELECT * FROM events WHERE sequence > ? ORDER BY sequence LIMIT ?")
      .all(sequence, limit)
      .map((row) => ({
        sequence: row.sequence,
        time: new Date(row.time),
        subject: row.subject,
        subjectUuid: row.subject_uuid,
        name: row.name,
        kwargs: JSON.parse(row.kwargs) as Record<string, string>,
      }));
  }

  uuidOfSubject(subject: string, upTo = Number.MAX_SAFE_INTEGER): string | undefined {
    return this.sql
      .prepare<[string, number], { subject_uuid: string }>(
        "SELECT subject_uuid FROM events WHERE subject = ? AND subject_uuid <> '' AND sequence <= ? ORDER BY sequence DESC LIMIT 1",
      )
      .get(subject, upTo)?.subject_uuid;
  }

  namesUuid(uuid: string): boolean {
    // No index on subject_uuid: only a CreateVm with a client-chosen uuid asks, and the log is bounded.
    return this.sql.prepare<[string], { found: number }>("SELECT 1 AS found FROM events WHERE subject_uuid = ? LIMIT 1").get(uuid) !== undefined;
  }

  namesSubject(subject: string): boolean {
    return this.sql.prepare<[string], { found: number }>("SELECT 1 AS found FROM events WHERE subject = ? LIMIT 1").get(subject) !== undefined;
  }

  trim(keep: number): void {
    this.sql.prepare("DELETE FROM events WHERE sequence <= ?").run(this.latestSequence() - keep);
  }

  /** The events of the transaction that just committed; the next one starts empty. */
  takeCommitted(): StoredEvent[] {
    const events = this.pending;
    this.pending = [];
    return events;
  }

  discardPending(): void {
    this.pending = [];
  }
}

/** Results of retry-safe requests, by the client's request_id. */
export class SqliteRequestRepository implements RequestRepository {
  private readonly sql: StatementCache;

  constructor(db: Database) {
    this.sql = new StatementCache(db);
  }

  find(requestId: string): RememberedRequest | undefined {
    const row = this.sql
      .prepare<[string], { rpc: string; request: string; result: string; created_at: string }>("SELECT rpc, request, result, created_at FROM request_ids WHERE request_id = ?")
      .get(requestId);
    return row && { rpc: row.rpc, request: row.request, result: row.result, time: new Date(row.created_at) };
  }

  remember(requestId: string, remembered: RememberedRequest): void {
    this.sql
      .prepare("INSERT INTO request_ids (request_id, rpc, request, result, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (request_id) DO UPDATE SET rpc = excluded.rpc, request = excluded.request, result = excluded.result, created_at = excluded.created_at")
      .run(requestId, remembered.rpc, remembered.request, remembered.result, remembered.time.toISOString());
  }

  forgetBefore(time: Date): void {
    this.sql.prepare("DELETE FROM request_ids WHERE created_at < ?").run(time.toISOString());
  }
}
