import Database from "better-sqlite3";
import * as fs from "node:fs";
import * as path from "node:path";
import { migrate, MIGRATIONS } from "../../../../../src/adapters/store/sqlite/migrations";
import { DATABASE_FILE, PID_FILE, SqliteStore, StoreLockedError } from "../../../../../src/adapters/store/sqlite/sqlite-store";
import { makeTempDir, removeDir } from "../../../../fixtures/temp-dir";

describe("SqliteStore", () => {
  let dir: string;
  beforeEach(() => (dir = makeTempDir()));
  afterEach(() => removeDir(dir));

  it("creates the folder, applies the migrations and makes a host id once", () => {
    const dataDir = path.join(dir, "nested", "data");
    const first = SqliteStore.open(dataDir);
    const hostId = first.host().hostId;
    expect(hostId).toMatch(/^[0-9a-f-]{36}$/);
    expect(fs.readFileSync(path.join(dataDir, PID_FILE), "utf8").trim()).toBe(String(process.pid));
    first.close();
    expect(fs.existsSync(path.join(dataDir, PID_FILE))).toBe(false);

    const again = SqliteStore.open(dataDir);
    expect(again.host().hostId).toBe(hostId);
    again.close();

    const db = new Database(path.join(dataDir, DATABASE_FILE));
    expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
    const versions = db.prepare("SELECT version FROM schema_migrations ORDER BY version").pluck().all();
    expect(versions).toEqual(MIGRATIONS.map((m) => m.version));
    db.close();
  });

  it("refuses a second opening of the same folder while the first holds it", () => {
    const first = SqliteStore.open(dir);
    expect(() => SqliteStore.open(dir)).toThrow(StoreLockedError);
    expect(() => SqliteStore.open(dir)).toThrow(`(pid ${process.pid})`);
    first.close();
    SqliteStore.open(dir).close();
  });
});

describe("migrate", () => {
  it("applies only what is new, each once, in order", () => {
    const db = new Database(":memory:");
    const steps = [
      { version: 2, name: "b", up: "CREATE TABLE b (x)" },
      { version: 1, name: "a", up: "CREATE TABLE a (x)" },
    ];
    expect(migrate(db, steps)).toEqual([1, 2]);
    expect(migrate(db, steps)).toEqual([]);
    expect(migrate(db, [...steps, { version: 3, name: "c", up: "CREATE TABLE c (x)" }])).toEqual([3]);
  });

  it("rolls a failed migration back whole", () => {
    const db = new Database(":memory:");
    expect(() => migrate(db, [{ version: 1, name: "bad", up: "CREATE TABLE a (x); CREATE TABLE a (y);" }])).toThrow();
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'a'").get()).toBeUndefined();
    expect(migrate(db, [{ version: 1, name: "good", up: "CREATE TABLE a (x)" }])).toEqual([1]);
  });

  it("finds a VM by its name in any case through an index, not a scan of every VM", () => {
    const db = new Database(":memory:");
    migrate(db);
    // The statement of SqliteVmRepository.byNameAnyCase.
    const plan = db.prepare("EXPLAIN QUERY PLAN SELECT * FROM vms WHERE name = ? COLLATE NOCASE LIMIT 1").all("Work") as { detail: string }[];
    expect(plan.map((step) => step.detail)).toEqual([expect.stringContaining("USING INDEX vms_by_name_any_case")]);
  });

  it("refuses state written by a newer Steward", () => {
    const db = new Database(":memory:");
    const newest = Math.max(...MIGRATIONS.map((m) => m.version));
    migrate(db, [{ version: newest + 1, name: "future", up: "SELECT 1" }]);
    expect(() => migrate(db, MIGRATIONS)).toThrow(/newer Steward/);
  });
});
