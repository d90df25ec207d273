import type { Database } from "better-sqlite3";
import type { LabelRecord, LabelRepository } from "../../../ports/store";

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
