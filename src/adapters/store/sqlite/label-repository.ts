import type { Database } from "better-sqlite3";
import { StatementCache } from "./statement-cache";
import type { LabelRecord } from "../../../core/model/label";
import type { GlobalPropertyRepository, LabelRepository } from "../../../ports/store";

interface LabelRow {
  name: string;
  color: number;
  idx: number;
  builtin: number;
}

export class SqliteLabelRepository implements LabelRepository {
  private readonly sql: StatementCache;

  constructor(db: Database) {
    this.sql = new StatementCache(db);
  }

  list(): LabelRecord[] {
    return this.sql.prepare<[], LabelRow>("SELECT * FROM labels ORDER BY idx").all().map(toLabel);
  }

  get(name: string): LabelRecord | undefined {
    const row = this.sql.prepare<[string], LabelRow>("SELECT * FROM labels WHERE name = ?").get(name);
    return row && toLabel(row);
  }

  insert(label: LabelRecord): void {
    this.sql
      .prepare("INSERT INTO labels (name, color, idx, builtin) VALUES (?, ?, ?, ?)")
      .run(label.name, label.color, label.index, label.builtin ? 1 : 0);
  }

  remove(name: string): void {
    this.sql.prepare("DELETE FROM labels WHERE name = ?").run(name);
  }

  nextIndex(): number {
    return (this.sql.prepare<[], { next: number }>("SELECT MAX(idx) + 1 AS next FROM labels").get() as { next: number }).next;
  }
}

function toLabel(row: LabelRow): LabelRecord {
  return { name: row.name, color: row.color, index: row.idx, builtin: row.builtin === 1 };
}

export class SqliteGlobalPropertyRepository implements GlobalPropertyRepository {
  private readonly sql: StatementCache;

  constructor(db: Database) {
    this.sql = new StatementCache(db);
  }

  all(): Record<string, string> {
    const values: Record<string, string> = {};
    for (const { name, value } of this.sql.prepare<[], { name: string; value: string }>("SELECT name, value FROM global_properties").all()) {
      values[name] = value;
    }
    return values;
  }

  set(name: string, value: string): void {
    this.sql.prepare("INSERT INTO global_properties (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value").run(name, value);
  }

  delete(name: string): boolean {
    return this.sql.prepare("DELETE FROM global_properties WHERE name = ?").run(name).changes > 0;
  }
}
