import type { Database } from "better-sqlite3";
import type { PoolRecord } from "../../../core/model/pool";
import type { PoolRepository } from "../../../ports/store";
import { StatementCache } from "./statement-cache";

interface PoolRow {
  name: string;
  driver: string;
  parameters: string;
  revisions_to_keep: number;
  ephemeral_volatile: number;
  limit_bytes: number;
  created_at: string;
}

export class SqlitePoolRepository implements PoolRepository {
  private readonly sql: StatementCache;

  constructor(db: Database) {
    this.sql = new StatementCache(db);
  }

  list(): PoolRecord[] {
    return this.sql.prepare<[], PoolRow>("SELECT * FROM pools ORDER BY name").all().map(toPool);
  }

  get(name: string): PoolRecord | undefined {
    const row = this.sql.prepare<[string], PoolRow>("SELECT * FROM pools WHERE name = ?").get(name);
    return row && toPool(row);
  }

  insert(pool: PoolRecord): void {
    this.sql
      .prepare(
        `INSERT INTO pools (name, driver, parameters, revisions_to_keep, ephemeral_volatile, limit_bytes, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(pool.name, pool.driver, JSON.stringify(pool.parameters), pool.revisionsToKeep, pool.ephemeralVolatile ? 1 : 0, pool.limitBytes, pool.createdAt.toISOString());
  }

  remove(name: string): void {
    this.sql.prepare("DELETE FROM pools WHERE name = ?").run(name);
  }

  update(name: string, settings: Pick<PoolRecord, "revisionsToKeep" | "ephemeralVolatile" | "limitBytes">): void {
    this.sql
      .prepare("UPDATE pools SET revisions_to_keep = ?, ephemeral_volatile = ?, limit_bytes = ? WHERE name = ?")
      .run(settings.revisionsToKeep, settings.ephemeralVolatile ? 1 : 0, settings.limitBytes, name);
  }
}

function toPool(row: PoolRow): PoolRecord {
  return {
    name: row.name,
    driver: row.driver,
    parameters: JSON.parse(row.parameters) as Record<string, string>,
    revisionsToKeep: row.revisions_to_keep,
    ephemeralVolatile: row.ephemeral_volatile === 1,
    limitBytes: row.limit_bytes,
    createdAt: new Date(row.created_at),
  };
}
