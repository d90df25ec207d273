import type { Database, Statement } from "better-sqlite3";
import type { VmClassName } from "../../../core/vm-classes";
import type { VmFilter, VmRecord, VmRepository } from "../../../ports/store";

interface VmRow {
  qid: number;
  uuid: string;
  name: string;
  klass: string;
  created_at: string;
}

/** VMs in SQLite: one row per VM, its set properties and tags beside it. */
export class SqliteVmRepository implements VmRepository {
  private readonly byQidStatement: Statement<[number], VmRow>;
  private readonly byNameStatement: Statement<[string], VmRow>;
  private readonly byUuidStatement: Statement<[string], VmRow>;
  private readonly propertiesOf: Statement<[number], { name: string; value: string }>;
  private readonly tagsOf: Statement<[number], { tag: string }>;

  constructor(private readonly db: Database) {
    this.byQidStatement = db.prepare("SELECT * FROM vms WHERE qid = ?");
    this.byNameStatement = db.prepare("SELECT * FROM vms WHERE name = ?");
    this.byUuidStatement = db.prepare("SELECT * FROM vms WHERE uuid = ?");
    this.propertiesOf = db.prepare("SELECT name, value FROM vm_properties WHERE qid = ?");
    this.tagsOf = db.prepare("SELECT tag FROM vm_tags WHERE qid = ? ORDER BY tag");
  }

  byQid(qid: number): VmRecord | undefined {
    return this.record(this.byQidStatement.get(qid));
  }

  byName(name: string): VmRecord | undefined {
    return this.record(this.byNameStatement.get(name));
  }

  byUuid(uuid: string): VmRecord | undefined {
    return this.record(this.byUuidStatement.get(uuid));
  }

  list(filter: VmFilter, afterName: string, limit: number): VmRecord[] {
    const { where, params } = whereClause(filter);
    const rows = this.db
      .prepare<unknown[], VmRow>(`SELECT * FROM vms ${where} ${where ? "AND" : "WHERE"} name > ? ORDER BY name LIMIT ?`)
      .all(...params, afterName, limit);
    return rows.map((row) => this.record(row)!);
  }

  count(filter: VmFilter): number {
    const { where, params } = whereClause(filter);
    return (this.db.prepare<unknown[], { n: number }>(`SELECT COUNT(*) AS n FROM vms ${where}`).get(...params) as { n: number }).n;
  }

  nextQid(): number {
    const row = this.db
      .prepare<[], { qid: number }>(
        "SELECT COALESCE((SELECT MIN(v.qid) + 1 FROM vms v WHERE NOT EXISTS (SELECT 1 FROM vms w WHERE w.qid = v.qid + 1)), 1) AS qid",
      )
      .get()!;
    return row.qid;
  }

  insert(vm: Omit<VmRecord, "tags" | "properties">): void {
    this.db
      .prepare("INSERT INTO vms (qid, uuid, name, klass, created_at) VALUES (?, ?, ?, ?, ?)")
      .run(vm.qid, vm.uuid, vm.name, vm.klass, vm.createdAt.toISOString());
  }

  remove(qid: number): void {
    this.db.prepare("DELETE FROM vms WHERE qid = ?").run(qid);
  }

  setProperty(qid: number, name: string, value: string): void {
    this.db
      .prepare("INSERT INTO vm_properties (qid, name, value) VALUES (?, ?, ?) ON CONFLICT (qid, name) DO UPDATE SET value = excluded.value")
      .run(qid, name, value);
  }

  deleteProperty(qid: number, name: string): boolean {
    return this.db.prepare("DELETE FROM vm_properties WHERE qid = ? AND name = ?").run(qid, name).changes > 0;
  }

  all(): VmRecord[] {
    return this.db.prepare<[], VmRow>("SELECT * FROM vms ORDER BY qid").all().map((row) => this.record(row)!);
  }

  addTag(qid: number, tag: string): boolean {
    return this.db.prepare("INSERT OR IGNORE INTO vm_tags (qid, tag) VALUES (?, ?)").run(qid, tag).changes > 0;
  }

  removeTag(qid: number, tag: string): boolean {
    return this.db.prepare("DELETE FROM vm_tags WHERE qid = ? AND tag = ?").run(qid, tag).changes > 0;
  }

  rename(qid: number, name: string): void {
    this.db.prepare("UPDATE vms SET name = ? WHERE qid = ?").run(name, qid);
  }

  features(qid: number): Record<string, string> {
    const features: Record<string, string> = {};
    for (const { name, value } of this.db.prepare<[number], { name: string; value: string }>("SELECT name, value FROM vm_features WHERE qid = ? ORDER BY name").all(qid)) {
      features[name] = value;
    }
    return features;
  }

  setFeature(qid: number, name: string, value: string): void {
    this.db
      .prepare("INSERT INTO vm_features (qid, name, value) VALUES (?, ?, ?) ON CONFLICT (qid, name) DO UPDATE SET value = excluded.value")
      .run(qid, name, value);
  }

  removeFeature(qid: number, name: string): boolean {
    return this.db.prepare("DELETE FROM vm_features WHERE qid = ? AND name = ?").run(qid, name).changes > 0;
  }

  notes(qid: number): string {
    return this.db.prepare<[number], { notes: string }>("SELECT notes FROM vm_notes WHERE qid = ?").get(qid)?.notes ?? "";
  }

  setNotes(qid: number, notes: string): void {
    if (notes === "") this.db.prepare("DELETE FROM vm_notes WHERE qid = ?").run(qid);
    else this.db.prepare("INSERT INTO vm_notes (qid, notes) VALUES (?, ?) ON CONFLICT (qid) DO UPDATE SET notes = excluded.notes").run(qid, notes);
  }

  referencesTo(qid: number, vmProperties: readonly string[]): { vm: string; property: string }[] {
    if (vmProperties.length === 0) return [];
    const marks = vmProperties.map(() => "?").join(", ");
    return this.db
      .prepare<unknown[], { vm: string; property: string }>(
        `SELECT v.name AS vm, p.name AS property FROM vm_properties p JOIN vms v ON v.qid = p.qid
         WHERE p.name IN (${marks}) AND p.value = ? ORDER BY v.name, p.name`,
      )
      .all(...vmProperties, String(qid));
  }

  withLabel(label: string): string[] {
    return this.db
      .prepare<[string], { name: string }>(
        "SELECT v.name FROM vm_properties p JOIN vms v ON v.qid = p.qid WHERE p.name = 'label' AND p.value = ? ORDER BY v.name",
      )
      .all(label)
      .map((row) => row.name);
  }

  private record(row: VmRow | undefined): VmRecord | undefined {
    if (!row) return undefined;
    const properties: Record<string, string> = {};
    for (const { name, value } of this.propertiesOf.all(row.qid)) properties[name] = value;
    return {
      qid: row.qid,
      uuid: row.uuid,
      name: row.name,
      klass: row.klass as VmClassName,
      createdAt: new Date(row.created_at),
      properties,
      tags: this.tagsOf.all(row.qid).map((t) => t.tag),
    };
  }
}

function whereClause(filter: VmFilter): { where: string; params: unknown[] } {
  const conditions: string[] = [];
  const params: unknown[] = [];
  if (filter.klass) {
    conditions.push("klass = ?");
    params.push(filter.klass);
  }
  if (filter.tag) {
    conditions.push("qid IN (SELECT qid FROM vm_tags WHERE tag = ?)");
    params.push(filter.tag);
  }
  if (filter.label) {
    conditions.push("qid IN (SELECT qid FROM vm_properties WHERE name = 'label' AND value = ?)");
    params.push(filter.label);
  }
  return { where: conditions.length ? `WHERE ${conditions.join(" AND ")}` : "", params };
}
