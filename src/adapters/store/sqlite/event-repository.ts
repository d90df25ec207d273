import type { Database } from "better-sqlite3";
import type { EventRepository, NewEvent, RequestRepository } from "../../../ports/store";

/** The event log: written in the same transaction as the change it tells of. */
export class SqliteEventRepository implements EventRepository {
  constructor(private readonly db: Database) {}

  append(event: NewEvent, time: Date): number {
    const result = this.db
      .prepare("INSERT INTO events (time, subject, name, kwargs) VALUES (?, ?, ?, ?)")
      .run(time.toISOString(), event.subject, event.name, JSON.stringify(event.kwargs));
    return Number(result.lastInsertRowid);
  }
}

/** Results of retry-safe requests, by the client's request_id. */
export class SqliteRequestRepository implements RequestRepository {
  constructor(private readonly db: Database) {}

  find(requestId: string): { rpc: string; result: string } | undefined {
    return this.db.prepare<[string], { rpc: string; result: string }>("SELECT rpc, result FROM request_ids WHERE request_id = ?").get(requestId);
  }

  remember(requestId: string, rpc: string, result: string, time: Date): void {
    this.db.prepare("INSERT INTO request_ids (request_id, rpc, result, created_at) VALUES (?, ?, ?, ?)").run(requestId, rpc, result, time.toISOString());
  }
}
