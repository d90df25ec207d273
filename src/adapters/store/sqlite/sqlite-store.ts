import Database from "better-sqlite3";
import { randomBytes, randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { StoredEvent } from "../../../core/model/event";
import type { HostRecord } from "../../../core/model/host";
import type { BlockExportRepository, GlobalPropertyRepository, LabelRepository, OperationRepository, PoolRepository, RequestRepository, RuntimeRepository, Store, VmRepository, VolumeAttachmentRepository, VolumeRepository } from "../../../ports/store";
import { SqliteBlockExportRepository } from "./block-export-repository";
import { SqliteEventRepository, SqliteRequestRepository } from "./event-repository";
import { GroupCommit } from "./group-commit";
import { SqliteRuntimeRepository } from "./runtime-repository";
import { SqliteGlobalPropertyRepository, SqliteLabelRepository } from "./label-repository";
import { migrate } from "./migrations";
import { SqliteOperationRepository } from "./operation-repository";
import { SqlitePoolRepository } from "./pool-repository";
import { SqliteVolumeRepository } from "./volume-repository";
import { SqliteVolumeAttachmentRepository } from "./volume-attachment-repository";
import { SqliteVmRepository } from "./vm-repository";

export const DATABASE_FILE = "steward.db";
export const PID_FILE = "steward.pid";

/** Another process holds the data folder. */
export class StoreLockedError extends Error {
  constructor(
    readonly dataDir: string,
    readonly holderPid: number | undefined,
  ) {
    super(
      `the data folder ${dataDir} is in use by another Steward server` +
        (holderPid ? ` (pid ${holderPid})` : "") +
        "; stop it, or give this one its own --data-dir",
    );
    this.name = "StoreLockedError";
  }
}

/** SQLite's page cache, in KiB. */
const PAGE_CACHE_KIB = 4096;

/**
 * The state in SQLite. The database is opened in WAL mode with an EXCLUSIVE lock held for the
 * life of the process: a second server on the same folder cannot open it, and the kernel drops
 * the lock when the holder dies, so a crash leaves no stale lock behind. Commits are made
 * durable in groups (group-commit.ts): each returns once a crash of the process cannot lose
 * it, and durable() waits until a power loss cannot either.
 */
export class SqliteStore implements Store {
  readonly vms: VmRepository;
  readonly labels: LabelRepository;
  readonly globals: GlobalPropertyRepository;
  readonly events: SqliteEventRepository;
  readonly requests: RequestRepository;
  readonly runtime: RuntimeRepository;
  readonly operations: OperationRepository;
  readonly pools: PoolRepository;
  readonly volumes: VolumeRepository;
  readonly attachments: VolumeAttachmentRepository;
  readonly blockExports: BlockExportRepository;
  private readonly commitListeners: ((events: readonly StoredEvent[]) => void)[] = [];

  private constructor(
    private readonly db: Database.Database,
    private readonly dataDir: string,
    private readonly hostRecord: HostRecord,
    private readonly groupCommit: GroupCommit,
  ) {
    this.vms = new SqliteVmRepository(db);
    this.labels = new SqliteLabelRepository(db);
    this.globals = new SqliteGlobalPropertyRepository(db);
    this.events = new SqliteEventRepository(db);
    this.requests = new SqliteRequestRepository(db);
    this.runtime = new SqliteRuntimeRepository(db);
    this.operations = new SqliteOperationRepository(db);
    this.pools = new SqlitePoolRepository(db);
    this.volumes = new SqliteVolumeRepository(db);
    this.attachments = new SqliteVolumeAttachmentRepository(db);
    this.blockExports = new SqliteBlockExportRepository(db);
  }

  /** Opens the state in `dataDir`; `now` is the clock that records when each VM was written. */
  static open(dataDir: string, now: () => Date = () => new Date()): SqliteStore {
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o750 });
    const db = new Database(path.join(dataDir, DATABASE_FILE), { timeout: 0 });
    try {
      db.function("write_time", { deterministic: false }, () => now().toISOString());
      lockExclusively(db, dataDir);
      // A commit is on disk once durable() says so (GroupCommit), not at each commit: one
      // fdatasync then covers the commits of many concurrent calls.
      db.pragma("synchronous = NORMAL");
      db.pragma("foreign_keys = ON");
      // VM records are kept in memory above the store (vm-repository.ts), so SQLite's own page
      // cache mostly holds pages of the event log, written once and rarely read again: 4 MiB of
      // them is plenty (better-sqlite3's default is 16 MiB, all of it resident).
      db.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
      migrate(db);
      const host = ensureHostRecord(db);
      const groupCommit = new GroupCommit(db, fs.openSync(path.join(dataDir, `${DATABASE_FILE}-wal`), "r"));
      fs.writeFileSync(path.join(dataDir, PID_FILE), `${process.pid}\n`);
      return new SqliteStore(db, dataDir, host, groupCommit);
    } catch (error) {
      db.close();
      throw error;
    }
  }

  host(): HostRecord {
    return this.hostRecord;
  }

  transaction<T>(work: () => T): T {
    // A transaction within a transaction is part of it, and publishes with it.
    if (this.db.inTransaction) return work();
    let result: T;
    try {
      result = this.db.transaction(work)();
    } catch (error) {
      this.events.discardPending();
      throw error;
    }
    const committed = this.events.takeCommitted();
    if (committed.length > 0) this.groupCommit.whenDurable(() => this.commitListeners.forEach((listener) => listener(committed)));
    return result;
  }

  durable(): Promise<void> {
    return this.groupCommit.durable();
  }

  onCommit(listener: (events: readonly StoredEvent[]) => void): void {
    this.commitListeners.push(listener);
  }

  close(): void {
    if (!this.db.open) return;
    fs.rmSync(path.join(this.dataDir, PID_FILE), { force: true });
    this.groupCommit.close();
    // Closing checkpoints the WAL into the database and syncs both.
    this.db.close();
  }
}

function lockExclusively(db: Database.Database, dataDir: string): void {
  db.pragma("locking_mode = EXCLUSIVE");
  try {
    db.pragma("journal_mode = WAL");
    // The first write transaction takes the lock; EXCLUSIVE mode keeps it until close.
    db.exec("BEGIN EXCLUSIVE; COMMIT");
  } catch (error) {
    if ((error as { code?: string }).code === "SQLITE_BUSY") {
      throw new StoreLockedError(dataDir, readPid(dataDir));
    }
    throw error;
  }
}

function readPid(dataDir: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(path.join(dataDir, PID_FILE), "utf8"), 10);
    return Number.isFinite(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

function ensureHostRecord(db: Database.Database): HostRecord {
  db.prepare("INSERT OR IGNORE INTO host (id, host_id, created_at, secret) VALUES (1, ?, ?, ?)").run(
    randomUUID(),
    new Date().toISOString(),
    randomBytes(32),
  );
  const row = db.prepare("SELECT host_id, created_at, secret FROM host WHERE id = 1").get() as {
    host_id: string;
    created_at: string;
    secret: Buffer;
  };
  return { hostId: row.host_id, createdAt: new Date(row.created_at), secret: new Uint8Array(row.secret) };
}
