/**
 * The block-exporter port: QEMU's block exports (QAPI's nbd-server-*, block-export-*), as the
 * core drives them. An exporter is one QEMU process that serves exports: Steward's
 * qemu-storage-daemon for volumes no running VM holds. Each call is the QMP command of the
 * same name; what QEMU refuses comes back as a DomainError the core passes on.
 */
import type { VolumeFormat } from "../core/model/volume";

/** How a volume is exported (QAPI's BlockExportType). */
export type BlockExportType = "nbd" | "vhost-user-blk" | "fuse";

export const BLOCK_EXPORT_TYPES: readonly BlockExportType[] = ["nbd", "vhost-user-blk", "fuse"];

/** Where an NBD server listens (QAPI's SocketAddress, inet or unix). */
export type NbdAddress = { kind: "inet"; host: string; port: number } | { kind: "unix"; path: string };

/** The NBD server's settings (nbd-server-start). */
export interface NbdServerSettings {
  address: NbdAddress;
  /** The most clients at once; 0 for no limit. */
  maxConnections: number;
  /** Absent for a server without TLS. */
  tls?: {
    /** The folder of x509 credentials (ca-cert.pem, server-cert.pem, server-key.pem), as tls-creds-x509's dir. */
    credsDir: string;
    /** The client identities (x509 distinguished names) allowed in, as a QAuthZList of exact matches; empty for any the CA signed. */
    allowedIdentities: readonly string[];
  };
}

/** The image an export serves: a volume's file, as the pool keeps it. */
export interface ExportImage {
  path: string;
  format: Extract<VolumeFormat, "raw" | "qcow2">;
  /** The images under a qcow2 one, nearest first, opened read-only from these paths (never by the names inside the images). */
  backing: readonly string[];
}

export interface NbdExportOptions {
  type: "nbd";
  /** The name clients ask for. */
  name: string;
  description: string;
  /** Persistent dirty bitmaps of the image to expose as qemu:dirty-bitmap:<name>. */
  bitmaps: readonly string[];
  allocationDepth: boolean;
}

export interface VhostUserBlkExportOptions {
  type: "vhost-user-blk";
  /** The socket's path, in Steward's exports folder. */
  socketPath: string;
  logicalBlockSize: number;
  numQueues: number;
}

export type FuseAllowOther = "off" | "on" | "auto";

export interface FuseExportOptions {
  type: "fuse";
  /** The mount point's path (a regular file), in Steward's exports folder. */
  mountpointPath: string;
  growable: boolean;
  allowOther: FuseAllowOther;
}

export type ExportOptions = NbdExportOptions | VhostUserBlkExportOptions | FuseExportOptions;

/** One export, as block-export-add takes it. */
export interface ExportSettings {
  id: string;
  writable: boolean;
  writethrough: boolean;
  /** The iothread to serve it from; empty for the main loop. */
  iothread: string;
  fixedIothread: boolean;
  options: ExportOptions;
}

/** An export as QEMU lists it (query-block-exports). */
export interface ExportState {
  id: string;
  type: BlockExportType;
  shuttingDown: boolean;
}

/** What RemoveBlockExport does with connected clients (QAPI's BlockExportRemoveMode). */
export type RemoveMode = "safe" | "hard";

/** One QEMU process that serves exports, driven over its QMP socket. */
export interface ExportServer {
  /**
   * Starts its NBD server (nbd-server-start). One running already is replaced, unless `adopted`:
   * then it is the one Steward started earlier with these settings, and is kept (its clients too).
   */
  startNbdServer(settings: NbdServerSettings, options?: { adopted: boolean }): Promise<void>;
  /** Stops its NBD server (nbd-server-stop), which ends its NBD exports; nothing when none runs. */
  stopNbdServer(): Promise<void>;
  /** Opens the image and exports it (blockdev-add, block-export-add); on failure nothing is left open. */
  addExport(settings: ExportSettings, image: ExportImage): Promise<void>;
  /**
   * Begins removing an export (block-export-del): resolves once QEMU has begun. SAFE is refused
   * while clients are connected (EXPORT_IN_USE). The image closes once the export is gone.
   */
  removeExport(id: string, mode: RemoveMode): Promise<void>;
  /** Its exports now (query-block-exports). */
  exports(): Promise<ExportState[]>;
  /** Clients connected to its NBD server now; 0 when none runs. */
  nbdConnections(): Promise<number>;
  /** Calls `listener` with the id of each export once QEMU has deleted it (BLOCK_EXPORT_DELETED) and closed its image. */
  onDeleted(listener: (id: string) => void): void;
}

/** What of an export lies in Steward's exports folder, by a name the request gives. */
export type ExportEndpoint = "nbd-socket" | "vhost-user-blk-socket" | "fuse-mountpoint";

export interface BlockExporter {
  /** The export types this host's QEMU was built with. */
  readonly types: readonly BlockExportType[];
  /** The path of an endpoint named `name` (a name checked to be one file's, no folder's). */
  endpointPath(kind: ExportEndpoint, name: string): string;
  /**
   * The storage daemon: the one an earlier Steward left running, adopted with its exports, or a
   * new one. `fresh` says which, so that the core re-adds what a new one lacks.
   */
  daemon(): Promise<{ server: ExportServer; fresh: boolean }>;
  /** Lets go of the daemon without ending it (Steward is stopping; the next one adopts it). */
  release(): Promise<void>;
}

/** Where the credentials of the NBD server's TLS are: a named set's folder, or Steward's own. */
export interface NbdCredentials {
  /** The folder of the set `name` ("" for Steward's own); undefined when there is no such set. */
  folder(name: string): Promise<string | undefined>;
  /** Where a set of that name would be, for the error that says it is missing. */
  expected(name: string): string;
}
