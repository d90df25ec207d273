import type { Database } from "better-sqlite3";
import type { VolumeFormat, VolumeRecord, VolumeState } from "../../../core/model/volume";
import type { VolumeRepository } from "../../../ports/store";
import { StatementCache } from "./statement-cache";

interface VolumeRow {
  pool: string;
  vid: string;
  vm_qid: number | null;
  name: string;
  format: string;
  rw: number;
  snap_on_start: number;
  save_on_stop: number;
  source: string;
  source_stamp: string;
  revisions_to_keep: number | null;
  ephemeral: number;
  limit_bytes: number;
  internal: number;
  state: string;
  created_at: string;
}

export class SqliteVolumeRepository implements VolumeRepository {
  private readonly sql: StatementCache;

  constructor(db: Database) {
    this.sql = new StatementCache(db);
  }

  get(pool: string, vid: string): VolumeRecord | undefined {
    const row = this.sql.prepare<[string, string], VolumeRow>("SELECT * FROM volumes WHERE pool = ? AND vid = ?").get(pool, vid);
    return row && toVolume(row);
  }

  inPool(pool: string, afterVid: string, limit: number): VolumeRecord[] {
    return this.sql
      .prepare<[string, string, number], VolumeRow>("SELECT * FROM volumes WHERE pool = ? AND vid > ? ORDER BY vid LIMIT ?")
      .all(pool, afterVid, limit)
      .map(toVolume);
  }

  countInPool(pool: string): number {
    return this.sql.prepare<[string], { n: number }>("SELECT COUNT(*) AS n FROM volumes WHERE pool = ?").get(pool)!.n;
  }

  ofVm(qid: number): VolumeRecord[] {
    return this.sql.prepare<[number], VolumeRow>("SELECT * FROM volumes WHERE vm_qid = ? ORDER BY name").all(qid).map(toVolume);
  }

  unsettled(): VolumeRecord[] {
    return this.sql.prepare<[], VolumeRow>("SELECT * FROM volumes WHERE state != 'ready' ORDER BY pool, vid").all().map(toVolume);
  }

  ofMissingVms(): VolumeRecord[] {
    return this.sql
      .prepare<[], VolumeRow>("SELECT * FROM volumes AS v WHERE vm_qid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM vms WHERE qid = v.vm_qid) ORDER BY pool, vid")
      .all()
      .map(toVolume);
  }

  insert(volume: VolumeRecord): void {
    this.sql
      .prepare(
        `INSERT INTO volumes (pool, vid, vm_qid, name, format, rw, snap_on_start, save_on_stop, source, source_stamp, revisions_to_keep, ephemeral, limit_bytes, internal, state, created_at)
         VALUES (@pool, @vid, @vm_qid, @name, @format, @rw, @snap_on_start, @save_on_stop, @source, @source_stamp, @revisions_to_keep, @ephemeral, @limit_bytes, @internal, @state, @created_at)`,
      )
      .run(toRow(volume));
  }

  update(volume: VolumeRecord): void {
    this.sql
      .prepare(
        `UPDATE volumes SET vm_qid = @vm_qid, name = @name, format = @format, rw = @rw, snap_on_start = @snap_on_start, save_on_stop = @save_on_stop,
           source = @source, source_stamp = @source_stamp, revisions_to_keep = @revisions_to_keep, ephemeral = @ephemeral, limit_bytes = @limit_bytes, internal = @internal, state = @state
         WHERE pool = @pool AND vid = @vid`,
      )
      .run(toRow(volume));
  }

  remove(pool: string, vid: string): void {
    this.sql.prepare("DELETE FROM volumes WHERE pool = ? AND vid = ?").run(pool, vid);
  }
}

function toRow(volume: VolumeRecord): VolumeRow {
  return {
    pool: volume.pool,
    vid: volume.vid,
    vm_qid: volume.vmQid ?? null,
    name: volume.name,
    format: volume.format,
    rw: volume.rw ? 1 : 0,
    snap_on_start: volume.snapOnStart ? 1 : 0,
    save_on_stop: volume.saveOnStop ? 1 : 0,
    source: volume.source,
    source_stamp: volume.sourceStamp,
    revisions_to_keep: volume.revisionsToKeep ?? null,
    ephemeral: volume.ephemeral ? 1 : 0,
    limit_bytes: volume.limitBytes,
    internal: volume.internal ? 1 : 0,
    state: volume.state,
    created_at: volume.createdAt.toISOString(),
  };
}

function toVolume(row: VolumeRow): VolumeRecord {
  return {
    pool: row.pool,
    vid: row.vid,
    vmQid: row.vm_qid ?? undefined,
    name: row.name,
    format: row.format as VolumeFormat,
    rw: row.rw === 1,
    snapOnStart: row.snap_on_start === 1,
    saveOnStop: row.save_on_stop === 1,
    source: row.source,
    sourceStamp: row.source_stamp,
    revisionsToKeep: row.revisions_to_keep ?? undefined,
    ephemeral: row.ephemeral === 1,
    limitBytes: row.limit_bytes,
    internal: row.internal === 1,
    state: row.state as VolumeState,
    createdAt: new Date(row.created_at),
  };
}
