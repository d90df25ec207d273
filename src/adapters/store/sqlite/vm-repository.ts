import type { Database, Statement } from "better-sqlite3";
import type { VmClassName } from "../../../core/model/vm-classes";
import type { VmFilter, VmRecord } from "../../../core/model/vm-record";
import type { VmRepository } from "../../../ports/store";
import { StatementCache } from "./statement-cache";
import { noFreeQid } from "../../../ports/store-errors";

interface VmRow {
  qid: number;
  uuid: string;
  name: string;
  klass: string;
  created_at: string;
  revision: number;
  updated_at: string;
}

/** The columns of a VM's row, in this order, as lists are read (arrays cost less than objects). */
const COLUMNS = "qid, uuid, name, klass, created_at, revision, updated_at";
type RawRow = [qid: number, uuid: string, name: string, klass: string, createdAt: string, revision: number, updatedAt: string];

function rowOf([qid, uuid, name, klass, created_at, revision, updated_at]: RawRow): VmRow {
  return { qid, uuid, name, klass, created_at, revision, updated_at };
}

/** The highest qid: ip addresses are made from 16 bits of it. */
export const MAX_QID = 65535;

/**
 * VMs in SQLite: one row per VM, its set properties and tags beside it.
 *
 * Records are kept (frozen) between reads and read again only when their row's revision has
 * changed: listing thousands of VMs then reads their rows, not their properties and tags.
 * A record kept from a transaction that rolled back is never taken for the committed one, as
 * the rolled-back revision is a different random number.
 */
export class SqliteVmRepository implements VmRepository {
  private readonly statements: StatementCache;
  private readonly kept = new Map<number, VmRecord>();

  private readonly byQidStatement: Statement<[number], VmRow>;
  private readonly byNameStatement: Statement<[string], VmRow>;
  private readonly byUuidStatement: Statement<[string], VmRow>;
  private readonly propertiesOf: Statement<[number], { name: string; value: string }>;
  private readonly tagsOf: Statement<[number], { tag: string }>;
  private readonly propertiesFor: Statement<[string], { qid: number; name: string; value: string }>;
  private readonly tagsFor: Statement<[string], { qid: number; tag: string }>;
  private readonly featuresFor: Statement<[string], { qid: number; name: string; value: string }>;

  constructor(db: Database) {
    this.statements = new StatementCache(db);
    this.byQidStatement = db.prepare("SELECT * FROM vms WHERE qid = ?");
    this.byNameStatement = db.prepare("SELECT * FROM vms WHERE name = ?");
    this.byUuidStatement = db.prepare("SELECT * FROM vms WHERE uuid = ?");
    this.propertiesOf = db.prepare("SELECT name, value FROM vm_properties WHERE qid = ?");
    this.tagsOf = db.prepare("SELECT tag FROM vm_tags WHERE qid = ? ORDER BY tag");
    // Rows of many VMs at once: their qids go as one JSON array, so that one statement, prepared
    // once, serves any number of them (an IN list of marks would be a new statement each time).
    this.propertiesFor = db.prepare(`SELECT qid, name, value FROM vm_properties WHERE ${QID_IN_JSON_ARRAY}`);
    this.tagsFor = db.prepare(`SELECT qid, tag FROM vm_tags WHERE ${QID_IN_JSON_ARRAY} ORDER BY tag`);
    this.featuresFor = db.prepare(`SELECT qid, name, value FROM vm_features WHERE ${QID_IN_JSON_ARRAY} ORDER BY name`);
  }

  byQid(qid: number): VmRecord | undefined {
    return this.record(this.byQidStatement.get(qid));
  }

  byName(name: string): VmRecord | undefined {
    return this.record(this.byNameStatement.get(name));
  }

  byNameAnyCase(name: string): VmRecord | undefined {
    return this.record(this.statement<[string], VmRow>("SELECT * FROM vms WHERE name = ? COLLATE NOCASE LIMIT 1").get(name));
  }

  byUuid(uuid: string): VmRecord | undefined {
    return this.record(this.byUuidStatement.get(uuid));
  }

  list(filter: VmFilter, afterName: string, limit: number): VmRecord[] {
    const { where, params } = whereClause(filter);
    const rows = this.rawRows(`SELECT ${COLUMNS} FROM vms ${where} ${where ? "AND" : "WHERE"} name > ? ORDER BY name LIMIT ?`, [...params, afterName, limit]);
    return this.records(rows);
  }

  featuresOf(qids: readonly number[]): Map<number, Record<string, string>> {
    const features = new Map<number, Record<string, string>>(qids.map((qid) => [qid, keyedByText()]));
    if (qids.length === 0) return features;
    for (const row of this.featuresFor.all(JSON.stringify(qids))) features.get(row.qid)![row.name] = row.value;
    return features;
  }

  /**
   * Records for many rows: those kept as they are, the others with their properties and tags
   * read in a few queries rather than two per row.
   */
  private records(rows: readonly RawRow[]): VmRecord[] {
    const stale = rows.filter(([qid, uuid, , , , revision]) => !this.keptFor(qid, uuid, revision));
    const properties = new Map<number, Record<string, string>>(stale.map(([qid]) => [qid, keyedByText()]));
    const tags = new Map<number, string[]>(stale.map(([qid]) => [qid, []]));
    if (stale.length > 0) {
      const qids = JSON.stringify(stale.map(([qid]) => qid));
      for (const row of this.propertiesFor.all(qids)) properties.get(row.qid)![row.name] = row.value;
      for (const row of this.tagsFor.all(qids)) tags.get(row.qid)!.push(row.tag);
    }
    return rows.map((row) => this.keptFor(row[0], row[1], row[5]) ?? this.keep(rowOf(row), properties.get(row[0])!, tags.get(row[0])!));
  }

  /** The kept record of a row, when it is still what the row says. */
  private keptFor(qid: number, uuid: string, revision: number): VmRecord | undefined {
    const kept = this.kept.get(qid);
    return kept && kept.revision === revision && kept.uuid === uuid ? kept : undefined;
  }

  private keep(row: VmRow, properties: Record<string, string>, tags: string[]): VmRecord {
    const record = Object.freeze({
      qid: row.qid,
      uuid: row.uuid,
      name: row.name,
      klass: row.klass as VmClassName,
      createdAt: new Date(row.created_at),
      updatedAt: new Date(row.updated_at),
      revision: row.revision,
      properties: Object.freeze(properties),
      // A copy: arrays grown by push keep room to grow, and thousands of records are kept.
      tags: Object.freeze(tags.slice()),
    });
    this.kept.set(row.qid, record);
    return record;
  }

  count(filter: VmFilter): number {
    const { where, params } = whereClause(filter);
    return (this.statement<unknown[], { n: number }>(`SELECT COUNT(*) AS n FROM vms ${where}`).get(...params) as { n: number }).n;
  }

  nextQid(skip: (qid: number) => boolean = () => false): number {
    // Past the highest qid while there is room (the common case, and cheap); else the lowest gap.
    const highest = this.statement<[], { qid: number }>("SELECT MAX(qid) AS qid FROM vms").get()!.qid;
    for (let qid = highest + 1; qid <= MAX_QID; qid++) if (!skip(qid)) return qid;
    const used = new Set(this.statement<[], { qid: number }>("SELECT qid FROM vms").all().map((row) => row.qid));
    for (let qid = 1; qid <= MAX_QID; qid++) if (!used.has(qid) && !skip(qid)) return qid;
    throw noFreeQid(MAX_QID);
  }

  insert(vm: Omit<VmRecord, "tags" | "properties" | "revision" | "updatedAt">): void {
    const createdAt = vm.createdAt.toISOString();
    this
      .statement("INSERT INTO vms (qid, uuid, name, klass, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)")
      .run(vm.qid, vm.uuid, vm.name, vm.klass, createdAt, createdAt);
    // A record kept from an insertion that rolled back has the same revision as this new row.
    this.kept.delete(vm.qid);
  }

  remove(qid: number): void {
    this.statement("DELETE FROM vms WHERE qid = ?").run(qid);
    this.kept.delete(qid);
  }

  setProperty(qid: number, name: string, value: string): void {
    this
      .statement("INSERT INTO vm_properties (qid, name, value) VALUES (?, ?, ?) ON CONFLICT (qid, name) DO UPDATE SET value = excluded.value")
      .run(qid, name, value);
  }

  deleteProperty(qid: number, name: string): boolean {
    return this.statement("DELETE FROM vm_properties WHERE qid = ? AND name = ?").run(qid, name).changes > 0;
  }

  all(): VmRecord[] {
    return this.records(this.rawRows(`SELECT ${COLUMNS} FROM vms ORDER BY qid`, []));
  }

  addTag(qid: number, tag: string): boolean {
    return this.statement("INSERT OR IGNORE INTO vm_tags (qid, tag) VALUES (?, ?)").run(qid, tag).changes > 0;
  }

  removeTag(qid: number, tag: string): boolean {
    return this.statement("DELETE FROM vm_tags WHERE qid = ? AND tag = ?").run(qid, tag).changes > 0;
  }

  rename(qid: number, name: string): void {
    this.statement("UPDATE vms SET name = ? WHERE qid = ?").run(name, qid);
  }

  features(qid: number): Record<string, string> {
    const features = keyedByText();
    for (const { name, value } of this.statement<[number], { name: string; value: string }>("SELECT name, value FROM vm_features WHERE qid = ? ORDER BY name").all(qid)) {
      features[name] = value;
    }
    return features;
  }

  setFeature(qid: number, name: string, value: string): void {
    this
      .statement("INSERT INTO vm_features (qid, name, value) VALUES (?, ?, ?) ON CONFLICT (qid, name) DO UPDATE SET value = excluded.value")
      .run(qid, name, value);
  }

  removeFeature(qid: number, name: string): boolean {
    return this.statement("DELETE FROM vm_features WHERE qid = ? AND name = ?").run(qid, name).changes > 0;
  }

  notes(qid: number): string {
    return this.statement<[number], { notes: string }>("SELECT notes FROM vm_notes WHERE qid = ?").get(qid)?.notes ?? "";
  }

  setNotes(qid: number, notes: string): void {
    if (notes === "") this.statement("DELETE FROM vm_notes WHERE qid = ?").run(qid);
    else this.statement("INSERT INTO vm_notes (qid, notes) VALUES (?, ?) ON CONFLICT (qid) DO UPDATE SET notes = excluded.notes").run(qid, notes);
  }

  anySets(name: string, value: string): boolean {
    return this.statement<[string, string], { found: number }>("SELECT 1 AS found FROM vm_properties WHERE name = ? AND value = ? LIMIT 1").get(name, value) !== undefined;
  }

  referencesTo(qid: number, vmProperties: readonly string[]): { vm: string; property: string }[] {
    if (vmProperties.length === 0) return [];
    const marks = vmProperties.map(() => "?").join(", ");
    return this
      .statement<unknown[], { vm: string; property: string }>(
        `SELECT v.name AS vm, p.name AS property FROM vm_properties p JOIN vms v ON v.qid = p.qid
         WHERE p.name IN (${marks}) AND p.value = ? ORDER BY v.name, p.name`,
      )
      .all(...vmProperties, String(qid));
  }

  withLabel(label: string): string[] {
    return this
      .statement<[string], { name: string }>(
        "SELECT v.name FROM vm_properties p JOIN vms v ON v.qid = p.qid WHERE p.name = 'label' AND p.value = ? ORDER BY v.name",
      )
      .all(label)
      .map((row) => row.name);
  }

  private rawRows(sql: string, params: unknown[]): RawRow[] {
    return this.statement(sql).raw(true).all(...params) as RawRow[];
  }

  /** A prepared statement, prepared once per distinct SQL text. */
  private statement<P extends unknown[] = unknown[], R = unknown>(sql: string): Statement<P, R> {
    return this.statements.prepare<P, R>(sql);
  }

  /** One row's record, with its two small queries (prepared once) unless kept: the path of single lookups. */
  private record(row: VmRow | undefined): VmRecord | undefined {
    if (!row) return undefined;
    const kept = this.keptFor(row.qid, row.uuid, row.revision);
    if (kept) return kept;
    const properties = keyedByText();
    for (const { name, value } of this.propertiesOf.all(row.qid)) properties[name] = value;
    return this.keep(row, properties, this.tagsOf.all(row.qid).map((t) => t.tag));
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

/** The condition of rows whose qid is in the JSON array given as the statement's parameter. */
const QID_IN_JSON_ARRAY = "qid IN (SELECT value FROM json_each(?))";

/**
 * An object for values keyed by text a client chose (a feature's name): without a prototype,
 * so that "constructor" or "__proto__" is a key like any other, never Object's own.
 */
function keyedByText(): Record<string, string> {
  return Object.create(null) as Record<string, string>;
}
