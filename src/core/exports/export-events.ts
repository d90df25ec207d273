import type { EventSubject, NewEvent } from "../model/event";
import type { BlockExportRecord } from "../model/block-export";
import { HOST_SUBJECT } from "../model/event";

/** The events of block exports: docs/EVENTS.md, Block exports. An export's are about the VM owning its volume, else the host. */
function about(subject: EventSubject, name: string, kwargs: Readonly<Record<string, string>>): NewEvent {
  return { subject: subject.name, subjectUuid: subject.uuid, name, kwargs };
}

export function blockExportAdd(subject: EventSubject, record: BlockExportRecord): NewEvent {
  return about(subject, "block-export-add", { id: record.id, type: record.options.type, pool: record.pool, vid: record.vid, writable: String(record.writable) });
}

/** RemoveBlockExport began the removal (block-export-del). */
export function blockExportShuttingDown(subject: EventSubject, record: BlockExportRecord, mode: string): NewEvent {
  return about(subject, "block-export-shutting-down", { id: record.id, mode, pool: record.pool, vid: record.vid });
}

/** QEMU's BLOCK_EXPORT_DELETED: the export is gone, its clients with it. */
export function blockExportDeleted(subject: EventSubject, record: BlockExportRecord): NewEvent {
  return about(subject, "block-export-deleted", { id: record.id, type: record.options.type, pool: record.pool, vid: record.vid });
}

export function nbdServerStart(address: string, tls: boolean): NewEvent {
  return about(HOST_SUBJECT, "nbd-server-start", { address, tls: String(tls) });
}

export function nbdServerStop(address: string): NewEvent {
  return about(HOST_SUBJECT, "nbd-server-stop", { address });
}
