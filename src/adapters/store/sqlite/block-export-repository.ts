import type { Database } from "better-sqlite3";
import type { BlockExportOptionsRecord, BlockExportRecord, NbdServerRecord } from "../../../core/model/block-export";
import type { BlockExportRepository } from "../../../ports/store";
import { StatementCache } from "./statement-cache";

interface ExportRow {
  id: string;
  pool: string;
  vid: string;
  writable: number;
  writethrough: number;
  iothread: string;
  fixed_iothread: number;
  options: string;
  shutting_down: number;
  created_at: string;
}

interface ServerRow {
  address: string;
  tls: number;
  max_connections: number;
  tls_creds: string;
  allowed_identities: string;
  started_at: string;
}

export class SqliteBlockExportRepository implements BlockExportRepository {
  private readonly sql: StatementCache;

  constructor(db: Database) {
    this.sql = new StatementCache(db);
  }

  nbdServer(): NbdServerRecord | undefined {
    const row = this.sql.prepare<[], ServerRow>("SELECT * FROM nbd_server").get();
    return (
      row && {
        address: row.address,
        tls: row.tls === 1,
        maxConnections: row.max_connections,
        tlsCreds: row.tls_creds,
        allowedIdentities: JSON.parse(row.allowed_identities) as string[],
        startedAt: new Date(row.started_at),
      }
    );
  }

  setNbdServer(server: NbdServerRecord | undefined): void {
    this.sql.prepare("DELETE FROM nbd_server").run();
    if (!server) return;
    this.sql
      .prepare("INSERT INTO nbd_server (only_one, address, tls, max_connections, tls_creds, allowed_identities, started_at) VALUES (1, ?, ?, ?, ?, ?, ?)")
      .run(server.address, server.tls ? 1 : 0, server.maxConnections, server.tlsCreds, JSON.stringify(server.allowedIdentities), server.startedAt.toISOString());
  }

  list(): BlockExportRecord[] {
    return this.sql.prepare<[], ExportRow>("SELECT * FROM block_exports ORDER BY id").all().map(toExport);
  }

  get(id: string): BlockExportRecord | undefined {
    const row = this.sql.prepare<[string], ExportRow>("SELECT * FROM block_exports WHERE id = ?").get(id);
    return row && toExport(row);
  }

  ofVolume(pool: string, vid: string): BlockExportRecord[] {
    return this.sql.prepare<[string, string], ExportRow>("SELECT * FROM block_exports WHERE pool = ? AND vid = ? ORDER BY id").all(pool, vid).map(toExport);
  }

  insert(record: BlockExportRecord): void {
    this.sql
      .prepare(
        `INSERT INTO block_exports (id, pool, vid, writable, writethrough, iothread, fixed_iothread, options, shutting_down, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        record.id,
        record.pool,
        record.vid,
        record.writable ? 1 : 0,
        record.writethrough ? 1 : 0,
        record.iothread,
        record.fixedIothread ? 1 : 0,
        JSON.stringify(record.options),
        record.shuttingDown ? 1 : 0,
        record.createdAt.toISOString(),
      );
  }

  markShuttingDown(id: string): void {
    this.sql.prepare("UPDATE block_exports SET shutting_down = 1 WHERE id = ?").run(id);
  }

  remove(id: string): boolean {
    return this.sql.prepare("DELETE FROM block_exports WHERE id = ?").run(id).changes > 0;
  }
}

function toExport(row: ExportRow): BlockExportRecord {
  return {
    id: row.id,
    pool: row.pool,
    vid: row.vid,
    writable: row.writable === 1,
    writethrough: row.writethrough === 1,
    iothread: row.iothread,
    fixedIothread: row.fixed_iothread === 1,
    options: JSON.parse(row.options) as BlockExportOptionsRecord,
    shuttingDown: row.shutting_down === 1,
    createdAt: new Date(row.created_at),
  };
}
