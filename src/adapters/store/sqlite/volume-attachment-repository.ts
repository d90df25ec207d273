import type { Database } from "better-sqlite3";
import type { VolumeAttachmentRecord } from "../../../core/model/volume";
import type { VolumeAttachmentRepository } from "../../../ports/store";
import { StatementCache } from "./statement-cache";

interface AttachmentRow {
  vm_qid: number;
  name: string;
  pool: string;
  vid: string;
  rw: number;
  disk_order: number;
}

export class SqliteVolumeAttachmentRepository implements VolumeAttachmentRepository {
  private readonly sql: StatementCache;

  constructor(db: Database) {
    this.sql = new StatementCache(db);
  }

  ofVm(qid: number): VolumeAttachmentRecord[] {
    return this.sql.prepare<[number], AttachmentRow>("SELECT * FROM volume_attachments WHERE vm_qid = ? ORDER BY disk_order, name").all(qid).map(toAttachment);
  }

  ofVolume(pool: string, vid: string): VolumeAttachmentRecord[] {
    return this.sql.prepare<[string, string], AttachmentRow>("SELECT * FROM volume_attachments WHERE pool = ? AND vid = ? ORDER BY vm_qid").all(pool, vid).map(toAttachment);
  }

  insert(attachment: VolumeAttachmentRecord): void {
    this.sql
      .prepare("INSERT INTO volume_attachments (vm_qid, name, pool, vid, rw, disk_order) VALUES (@vm_qid, @name, @pool, @vid, @rw, @disk_order)")
      .run({ vm_qid: attachment.vmQid, name: attachment.name, pool: attachment.pool, vid: attachment.vid, rw: attachment.rw ? 1 : 0, disk_order: attachment.order });
  }

  remove(vmQid: number, name: string): void {
    this.sql.prepare("DELETE FROM volume_attachments WHERE vm_qid = ? AND name = ?").run(vmQid, name);
  }
}

function toAttachment(row: AttachmentRow): VolumeAttachmentRecord {
  return { vmQid: row.vm_qid, name: row.name, pool: row.pool, vid: row.vid, rw: row.rw === 1, order: row.disk_order };
}
