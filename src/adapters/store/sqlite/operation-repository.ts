import type { Database } from "better-sqlite3";
import type { OperationError, OperationFilter, OperationKind, OperationOutcome, OperationPosition, OperationRecord, ProgressUnit } from "../../../core/model/operation";
import type { OperationRepository } from "../../../ports/store";
import { StatementCache } from "./statement-cache";

interface OperationRow {
  name: string;
  kind: string;
  method: string;
  target: string;
  target_uuid: string;
  caller: string;
  created_at: string;
  ended_at: string | null;
  progress_done: number;
  progress_total: number;
  progress_unit: string;
  cancel_requested: number;
  outcome: string;
  result_type: string | null;
  result: Buffer | null;
  error: string | null;
}

/** Operations in their own table, one row each, written whole. */
export class SqliteOperationRepository implements OperationRepository {
  private readonly sql: StatementCache;

  constructor(db: Database) {
    this.sql = new StatementCache(db);
  }

  get(name: string): OperationRecord | undefined {
    const row = this.sql.prepare<[string], OperationRow>("SELECT * FROM operations WHERE name = ?").get(name);
    return row && recordOf(row);
  }

  put(op: OperationRecord): void {
    this.sql
      .prepare(
        `INSERT INTO operations (name, kind, method, target, target_uuid, caller, created_at, ended_at, progress_done, progress_total,
                                 progress_unit, cancel_requested, outcome, result_type, result, error)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET target = excluded.target, target_uuid = excluded.target_uuid,
           ended_at = excluded.ended_at, progress_done = excluded.progress_done,
           progress_total = excluded.progress_total, progress_unit = excluded.progress_unit,
           cancel_requested = excluded.cancel_requested, outcome = excluded.outcome, result_type = excluded.result_type,
           result = excluded.result, error = excluded.error`,
      )
      .run(
        op.name,
        op.kind,
        op.method,
        op.target,
        op.targetUuid,
        op.caller,
        op.createdAt.toISOString(),
        op.endedAt?.toISOString() ?? null,
        op.progress.done,
        op.progress.total,
        op.progress.unit,
        op.cancelRequested ? 1 : 0,
        op.outcome,
        op.result?.type ?? null,
        op.result ? Buffer.from(op.result.bytes) : null,
        op.error ? JSON.stringify(op.error) : null,
      );
  }

  list(filter: OperationFilter, after: OperationPosition | undefined, limit: number): OperationRecord[] {
    const conditions: string[] = [];
    const params: unknown[] = [];
    if (filter.done !== undefined) conditions.push(filter.done ? "outcome <> 'running'" : "outcome = 'running'");
    if (filter.kind !== undefined) {
      conditions.push("kind = ?");
      params.push(filter.kind);
    }
    if (filter.target !== undefined) {
      conditions.push("target = ?");
      params.push(filter.target);
    }
    if (after) {
      // Newest first: the page goes on with the operations made before the last one given.
      conditions.push("(created_at, name) < (?, ?)");
      params.push(after.createdAt.toISOString(), after.name);
    }
    const where = conditions.length ? `WHERE ${conditions.join(" AND ")}` : "";
    return this.sql
      .prepare<unknown[], OperationRow>(`SELECT * FROM operations ${where} ORDER BY created_at DESC, name DESC LIMIT ?`)
      .all(...params, limit)
      .map(recordOf);
  }

  delete(name: string): boolean {
    return this.sql.prepare("DELETE FROM operations WHERE name = ?").run(name).changes > 0;
  }

  forgetEndedBefore(time: Date): void {
    this.sql.prepare("DELETE FROM operations WHERE ended_at IS NOT NULL AND ended_at < ?").run(time.toISOString());
  }
}

function recordOf(row: OperationRow): OperationRecord {
  return {
    name: row.name,
    kind: row.kind as OperationKind,
    method: row.method,
    target: row.target,
    targetUuid: row.target_uuid,
    caller: row.caller,
    createdAt: new Date(row.created_at),
    endedAt: row.ended_at === null ? undefined : new Date(row.ended_at),
    progress: { done: row.progress_done, total: row.progress_total, unit: row.progress_unit as ProgressUnit },
    cancelRequested: row.cancel_requested === 1,
    outcome: row.outcome as OperationOutcome,
    result: row.result_type !== null && row.result !== null ? { type: row.result_type, bytes: new Uint8Array(row.result) } : undefined,
    error: row.error === null ? undefined : (JSON.parse(row.error) as OperationError),
  };
}
