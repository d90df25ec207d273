import type { Database } from "better-sqlite3";
import { StatementCache } from "./statement-cache";
import type { RuntimeRepository } from "../../../ports/store";

/** The VMs marked running, in their own table: marking one does not change the VM's revision. */
export class SqliteRuntimeRepository implements RuntimeRepository {
  private readonly sql: StatementCache;

  constructor(db: Database) {
    this.sql = new StatementCache(db);
  }

  running(): { qid: number; startedAt: Date; settling: boolean }[] {
    return this.sql
      .prepare<[], { qid: number; started_at: string; settling: number }>("SELECT qid, started_at, settling FROM vm_runtime ORDER BY qid")
      .all()
      .map((row) => ({ qid: row.qid, startedAt: new Date(row.started_at), settling: row.settling === 1 }));
  }

  markRunning(qid: number, startedAt: Date): void {
    this.sql
      .prepare("INSERT INTO vm_runtime (qid, started_at) VALUES (?, ?) ON CONFLICT (qid) DO UPDATE SET started_at = excluded.started_at, settling = 0")
      .run(qid, startedAt.toISOString());
  }

  markSettling(qid: number): void {
    this.sql.prepare("UPDATE vm_runtime SET settling = 1 WHERE qid = ?").run(qid);
  }

  markHalted(qid: number): void {
    this.sql.prepare("DELETE FROM vm_runtime WHERE qid = ?").run(qid);
  }
}
