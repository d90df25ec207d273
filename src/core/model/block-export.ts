/**
 * Block exports as the store keeps them: what AddBlockExport and StartNbdServer asked, so that
 * a restart of Steward (or of its storage daemon) can serve them again.
 */

/** The host's NBD server (one at most), as StartNbdServer set it up. */
export interface NbdServerRecord {
  /** As the request gave it: host:port, or unix:<name>. */
  address: string;
  tls: boolean;
  maxConnections: number;
  /** The credentials set's name; empty for Steward's own. */
  tlsCreds: string;
  allowedIdentities: readonly string[];
  startedAt: Date;
}

export type BlockExportKind = "nbd" | "vhost-user-blk" | "fuse";

/** The options of each type, as the request gave them (names, not paths). */
export type BlockExportOptionsRecord =
  | { type: "nbd"; name: string; description: string; bitmaps: readonly string[]; allocationDepth: boolean }
  | { type: "vhost-user-blk"; socket: string; logicalBlockSize: number; numQueues: number }
  | { type: "fuse"; mountpoint: string; growable: boolean; allowOther: "off" | "on" | "auto" };

export interface BlockExportRecord {
  id: string;
  pool: string;
  vid: string;
  writable: boolean;
  writethrough: boolean;
  iothread: string;
  fixedIothread: boolean;
  options: BlockExportOptionsRecord;
  /** Whether RemoveBlockExport began its removal: it goes once QEMU tells the export is deleted. */
  shuttingDown: boolean;
  createdAt: Date;
}
