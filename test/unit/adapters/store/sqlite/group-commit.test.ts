import Database from "better-sqlite3";
import * as fs from "node:fs";
import * as path from "node:path";
import { GroupCommit } from "../../../../../src/adapters/store/sqlite/group-commit";
import { SqliteStore } from "../../../../../src/adapters/store/sqlite/sqlite-store";
import { domainAdd } from "../../../../../src/core/vms/vm-events";
import { makeTempDir, removeDir } from "../../../../fixtures/temp-dir";

/** A disk sync that ends when the test says, and counts how often it was asked for. */
function heldSync() {
  const waiting: { resolve: () => void; reject: (error: Error) => void }[] = [];
  let calls = 0;
  return {
    sync: () => {
      calls++;
      return new Promise<void>((resolve, reject) => waiting.push({ resolve, reject }));
    },
    get calls() {
      return calls;
    },
    endNext(error?: Error) {
      const next = waiting.shift();
      if (next === undefined) throw new Error("no sync is under way");
      if (error) next.reject(error);
      else next.resolve();
    },
  };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe("GroupCommit", () => {
  let dir: string;
  let db: Database.Database;
  let walFd: number;
  beforeEach(() => {
    dir = makeTempDir();
    db = new Database(path.join(dir, "state.db"));
    db.pragma("locking_mode = EXCLUSIVE");
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.exec("CREATE TABLE notes (text TEXT)");
    walFd = fs.openSync(path.join(dir, "state.db-wal"), "r");
  });
  afterEach(() => {
    db.close();
    removeDir(dir);
  });
  const note = (text: string) => db.prepare("INSERT INTO notes VALUES (?)").run(text);

  it("answers at once when nothing was written since the last sync", async () => {
    const disk = heldSync();
    const commits = new GroupCommit(db, walFd, disk.sync);
    await commits.durable();
    expect(disk.calls).toBe(0);
    commits.close();
  });

  it("waits for a sync that began after the change, and many waits share a few syncs", async () => {
    const disk = heldSync();
    const commits = new GroupCommit(db, walFd, disk.sync);
    note("first");
    let firstDurable = false;
    const first = commits.durable().then(() => (firstDurable = true));
    await turn();
    expect(disk.calls).toBe(1);
    // Written while the first sync runs: that sync does not cover them, one more does.
    const later = Array.from({ length: 20 }, (_, index) => {
      note(`later ${index}`);
      return commits.durable();
    });
    let laterDurable = false;
    void Promise.all(later).then(() => (laterDurable = true));
    disk.endNext();
    await first;
    await turn();
    expect({ firstDurable, laterDurable, syncs: disk.calls }).toEqual({ firstDurable: true, laterDurable: false, syncs: 2 });
    disk.endNext();
    await Promise.all(later);
    expect(disk.calls).toBe(2);
    commits.close();
  });

  it("releases what follows a commit in commit order once a sync covers it, and a failed sync keeps it for the next", async () => {
    const disk = heldSync();
    const commits = new GroupCommit(db, walFd, disk.sync);
    const released: string[] = [];
    note("a");
    commits.whenDurable(() => released.push("a"));
    note("b");
    commits.whenDurable(() => released.push("b"));
    await turn();
    disk.endNext(Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO" }));
    await turn();
    expect(released).toEqual([]);
    const after = commits.durable();
    await turn();
    disk.endNext();
    await after;
    expect(released).toEqual(["a", "b"]);
    commits.close();
  });

  it("fails the wait when the disk refuses the sync", async () => {
    const disk = heldSync();
    const commits = new GroupCommit(db, walFd, disk.sync);
    note("lost?");
    const waited = commits.durable();
    await turn();
    disk.endNext(Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO" }));
    await expect(waited).rejects.toThrow("EIO");
    commits.close();
  });
});

describe("SqliteStore's commits", () => {
  let dir: string;
  beforeEach(() => (dir = makeTempDir()));
  afterEach(() => removeDir(dir));

  it("tell their events once they are on disk, and durable() waits for that", async () => {
    const store = SqliteStore.open(dir);
    try {
      const told: string[] = [];
      store.onCommit((events) => told.push(...events.map((event) => event.name)));
      store.transaction(() => store.events.append(domainAdd({ uuid: "00000000-0000-4000-8000-000000000007", name: "work" }), new Date()));
      expect(told).toEqual([]);
      await store.durable();
      expect(told).toEqual(["domain-add"]);
    } finally {
      store.close();
    }
  });
});
