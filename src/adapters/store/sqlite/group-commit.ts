import type Database from "better-sqlite3";
import * as fs from "node:fs";

const SYNCED = Promise.resolve();

/** Flushes a file's data to the disk, as fdatasync(2). */
export type DataSync = (fd: number) => Promise<void>;

const fdatasync: DataSync = (fd) => new Promise<void>((resolve, reject) => fs.fdatasync(fd, (error) => (error ? reject(error) : resolve())));

/**
 * Group commit for a WAL database opened with synchronous=NORMAL. A commit then returns once
 * its pages are in the WAL file, which a crash of the process cannot lose, but before they are
 * on the disk, which a power loss could. One fdatasync of the WAL, run off the main thread,
 * makes every commit before it durable: whoever must not acknowledge a change before it is on
 * disk awaits durable(), and the fdatasyncs of many concurrent calls coalesce into a few.
 *
 * What follows a commit (its events) is released in commit order once a sync covers it, so no
 * one learns of a change that a power loss could still undo.
 */
export class GroupCommit {
  private readonly totalChanges: Database.Statement<[], number>;
  /** SQLite's count of rows changed on this connection, up to which the disk has it all. */
  private syncedChanges: number;
  private flushing: Promise<void> | undefined;
  private readonly afterSync: { changes: number; release: () => void }[] = [];
  private closed = false;

  constructor(
    db: Database.Database,
    /** The WAL file, which exists for as long as the database is open in EXCLUSIVE locking mode. */
    private readonly walFd: number,
    private readonly sync: DataSync = fdatasync,
  ) {
    this.totalChanges = db.prepare<[], number>("SELECT total_changes()").pluck();
    // What opening wrote (migrations, the host's record) is on disk before anyone relies on it.
    fs.fdatasyncSync(walFd);
    this.syncedChanges = this.totalChanges.get() ?? 0;
  }

  /** Resolves once every change committed so far is on disk; rejects when the disk refuses. */
  durable(): Promise<void> {
    const changes = this.changes();
    return changes <= this.syncedChanges ? SYNCED : this.syncUpTo(changes);
  }

  /**
   * Calls `release` once what is committed now is on disk, after whatever was handed here
   * before it, and starts the sync that gets it there.
   */
  whenDurable(release: () => void): void {
    this.afterSync.push({ changes: this.changes(), release });
    // A failed sync keeps what waits; the next one that succeeds releases it.
    this.durable().catch(() => undefined);
  }

  /** Stops syncing; the WAL's descriptor is closed once a sync under way is done with it. */
  close(): void {
    this.closed = true;
    if (this.flushing === undefined) fs.closeSync(this.walFd);
    else void this.flushing.catch(() => undefined).finally(() => fs.closeSync(this.walFd));
  }

  private changes(): number {
    return this.closed ? this.syncedChanges : (this.totalChanges.get() ?? 0);
  }

  private async syncUpTo(changes: number): Promise<void> {
    // A sync that began before these changes does not cover them: the one after it does.
    while (this.syncedChanges < changes && !this.closed) {
      this.flushing ??= this.flushOnce().finally(() => (this.flushing = undefined));
      await this.flushing;
    }
  }

  private async flushOnce(): Promise<void> {
    const covered = this.changes();
    await this.sync(this.walFd);
    this.syncedChanges = Math.max(this.syncedChanges, covered);
    while (this.afterSync.length > 0 && this.afterSync[0].changes <= this.syncedChanges) this.afterSync.shift()!.release();
  }
}
