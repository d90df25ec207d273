import type { Database } from "better-sqlite3";
import type { LabelRecord } from "../../../core/model/label";
import type { GlobalPropertyRepository, LabelRepository } from "../../../ports/store";

interface LabelRow {
  name: string;
  color: number;
  idx: number;
  builtin: number;
}

export class SqliteLabelRepository implements LabelRepository {
  constructor(private readonly db: Database) {}

  list(): LabelRecord[] {
    return this.db.prepare<[], LabelRow>("SELECT * FROM labels ORDER BY idx").all().map(toLabel);
  }

  get(name: string): LabelRecord | undefined {
    const row = this.db.prepare<[string], LabelRow>("SELECT * FROM labels WHERE name = ?").get(name);
    return row && toLabel(row);
  }

  insert(label: LabelRecord): void {
    this.db
      .prepare("INSERT INTO labels (name, color, idx, builtin) VALUES (?, ?, ?, ?)")
      .run(label.name, label.color, label.index, label.builtin ? 1 : 0);
  }

  remove(name: string): void {
    this.db.prepare("DELETE FROM labels WHERE name = ?").run(name);
  }

  nextIndex(): number {
    return (this.db.prepare<[], { next: number }>("SELECT MAX(idx) + 1 AS next FROM labels").get() as { next: number }).next;
  }
}

function toLabel(row: LabelRow): LabelRecord {
  return { name: row.name, color: row.color, index: row.idx, builtin: row.builtin === 1 };
}

export class SqliteGlobalPropertyRepository implements GlobalPropertyRepository {
  constructor(private readonly db: Database) {}

  all(): Record<string, string> {
    const values: Record<string, string> = {};
    for (const { name, value } of this.db.prepare<[], { name: string; value: string }>("SELECT name, value FROM global_properties").all()) {
      values[name] = value;
    }
    return values;
  }

  set(name: string, value: string): void {
    this.db.prepare("INSERT INTO global_properties (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value").run(name, value);
  }

  delete(name: string): boolean {
    return this.db.prepare("DELETE FROM global_properties WHERE name = ?").run(name).changes > 0;
  }
}
