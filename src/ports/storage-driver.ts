/**
 * The storage-driver port: what the core needs from whatever keeps a pool's volumes (sparse
 * files, reflinked files, qcow2 images, memory). It is small, in the manner of containerd's
 * Snapshotter; what only some drivers can do is an optional capability beside it (CheapClone),
 * which the core detects with a type guard and otherwise does the slow way.
 *
 * A volume is a run of bytes of a nominal size, named by a `vid` the caller chooses. Its
 * revisions are saved contents it can be reverted to; Qubes' snap_on_start and save_on_stop are
 * the core's policy, built from clone, snapshot and revert.
 *
 * Every operation is all or nothing: one that fails leaves the volume as it was, so that the
 * core's Revert can undo a multi-step change with the port's own operations (create ↔ delete,
 * snapshot ↔ deleteRevision, clone ↔ delete). resize has no undo, since shrinking is refused:
 * the core does it last.
 *
 * Sizes, offsets and lengths are bytes, as `number`: safe integers (2^53 bytes is 8 PiB), never
 * negative. A driver refuses others.
 */

import type { VolumeFormat } from "../core/model/volume";

/** A vid: path segments of letters, digits, "_", "." and "-" joined by "/". */
const VID = /^[A-Za-z0-9_.-]+(?:\/[A-Za-z0-9_.-]+)*$/;
/**
 * Short enough that a segment, with the longest suffix a driver adds (a revision's, a merge's),
 * stays under a filesystem's 255 bytes a name, and the whole under its 4096 a path.
 */
const MAX_VID_SEGMENT = 128;
const MAX_VID = 512;

/**
 * Whether `vid` is one a driver accepts. The segments "." and ".." are refused, so that a driver
 * may turn a vid into a path under its folder without it ever leading out.
 */
export function isValidVid(vid: string): boolean {
  return vid.length <= MAX_VID && VID.test(vid) && vid.split("/").every((segment) => segment !== "." && segment !== ".." && segment.length <= MAX_VID_SEGMENT);
}

/** A revision id: letters, digits, "_", "." and "-", not "." or "..", as drivers choose them (never a path). */
const REVISION_ID = /^[A-Za-z0-9_.-]{1,64}$/;

export function isValidRevisionId(revision: string): boolean {
  return REVISION_ID.test(revision) && revision !== "." && revision !== "..";
}

/** A saved content of a volume. */
export interface Revision {
  /** Chosen by the driver, unique within the volume for its life. */
  id: string;
  /** When it was saved. */
  createdAt: Date;
  /** The volume's size when it was saved; a revert brings it back. */
  sizeBytes: number;
}

/** A run of a volume's bytes that is stored, or a hole (which reads as zeroes). */
export interface Extent {
  offset: number;
  length: number;
  /** False for a hole: an export can skip it. */
  allocated: boolean;
}

/** The first `length` bytes of the buffer a caller gave VolumeReader.read, to read into. */
export function bufferFor(into: Uint8Array, length: number): Uint8Array {
  if (into.length < length) throw new RangeError(`a read of ${length} bytes into a buffer of ${into.length}`);
  return into.subarray(0, length);
}

/** Reads one content of a volume: its current one, or a revision. */
export interface VolumeReader {
  /** The size of the content read, in bytes. */
  readonly sizeBytes: number;
  /**
   * The content as maximal runs of allocated bytes and holes, in order, covering [0, sizeBytes)
   * exactly; empty for an empty volume. A driver may count bytes around what was written as
   * allocated (a filesystem's block, a qcow2 cluster), and zeroes that were written may stay
   * allocated, as in a file; but a hole is never reported where data was written.
   */
  extents(): Promise<Extent[]>;
  /**
   * `length` bytes from `offset`, holes as zeroes, in a buffer of the caller's own: `into`'s
   * first `length` bytes when given (an export reads every chunk into one buffer, rather than
   * allocating 1 MiB per chunk for the collector to free), else a new one. OUT_OF_RANGE past
   * the end. The core reads in chunks (of 1 MiB at most), so a read is never huge.
   */
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  /** Releases what the reader holds (a file descriptor). Closing again does nothing. */
  close(): Promise<void>;
}

/**
 * Writes a new content for a volume: it starts all zeroes, of the size the writer was opened
 * with, and replaces the volume's content (and size) only when finish() succeeds. An import that
 * fails or is cancelled aborts, and the volume is as it was.
 */
export interface VolumeWriter {
  /**
   * Writes `bytes` at `offset` (the caller may reuse its buffer once this resolves). OUT_OF_RANGE
   * past the end; RESOURCE_EXHAUSTED when the pool has no room. After a failed write the writer
   * may still write, finish or abort.
   */
  write(offset: number, bytes: Uint8Array): Promise<void>;
  /**
   * Makes what was written the volume's content, at once: a reader sees the old content or the
   * new one, never a mix. NOT_FOUND when the volume was deleted meanwhile. The writer is closed
   * afterwards, whether it succeeded or not.
   */
  finish(): Promise<void>;
  /**
   * Drops what was written; the volume is as it was. Aborting a writer that is closed does
   * nothing, so cleanup code may call it whatever happened before.
   */
  abort(): Promise<void>;
}

/** How much a volume takes. */
export interface VolumeUsage {
  /** Its size as a guest sees it. */
  sizeBytes: number;
  /**
   * Bytes it really takes, as du counts a file's: whole blocks, and those it shares with its
   * revisions or clones count for each. Less than sizeBytes while it is sparse.
   */
  allocatedBytes: number;
  /**
   * Changes whenever its content may have changed (a write, an import, a revert, a resize), and
   * stays the same while it is not changed: how a snapshot taken of it knows it is outdated.
   */
  stamp: string;
}

/** How much a pool takes. */
export interface PoolUsage {
  /** Bytes its volumes and revisions take together, shared bytes counted once. */
  usedBytes: number;
  /** The most it can hold (its filesystem's size, or a configured capacity); undefined when unbounded. */
  capacityBytes: number | undefined;
  /** Bytes still free for it (on its filesystem, for what Steward may use); undefined when unbounded. */
  freeBytes: number | undefined;
}

/**
 * The volumes of one pool. Operations on a vid the pool does not hold are NOT_FOUND
 * (VOLUME_NOT_FOUND), except delete, which is idempotent; a vid that isValidVid refuses is
 * INVALID_ARGUMENT.
 */
export interface StorageDriver {
  /** How the pool keeps its volumes' bytes. */
  readonly format: VolumeFormat;
  /** Where `vid`'s bytes are on the host (a file in the pool's folder); undefined for a driver that keeps none there (memory). */
  hostPath(vid: string): string | undefined;
  /**
   * The images under `vid`'s current one, nearest first, each the backing file of the one above
   * and checked to be the pool's own; empty when it has none. Present in drivers whose images
   * chain (qcow2): a hypervisor that opens no file by the name inside an image opens these.
   */
  backingChain?(vid: string): Promise<string[]>;
  /**
   * Makes an empty (all-zero) volume of `sizeBytes`, sparse where the driver can. ALREADY_EXISTS
   * when the vid is taken. The core gives multiples of 512, as the proto demands; a driver whose
   * format cannot hold other sizes (qcow2 rounds them up) may refuse them with INVALID_ARGUMENT.
   */
  create(vid: string, sizeBytes: number): Promise<void>;
  /** Deletes a volume and its revisions; false when there was none, so a retry or a start-up sweep may call it again. */
  delete(vid: string): Promise<boolean>;
  /** Every vid the pool holds, sorted; for the start-up sweep that finds volumes no record names. */
  list(): Promise<string[]>;
  /** Grows a volume to `sizeBytes`; the new bytes read as zeroes. The same size does nothing; smaller is FAILED_PRECONDITION. */
  resize(vid: string, sizeBytes: number): Promise<void>;
  /** Saves the volume's current content (and size) as a new revision; later writes do not change it. */
  snapshot(vid: string): Promise<Revision>;
  /**
   * Makes the volume's content and size those of `revision` again. The revision stays, so a
   * second revert gives the same; the current content is not saved first (snapshot it if it
   * matters). NOT_FOUND (REVISION_NOT_FOUND) for a revision the volume does not have.
   */
  revert(vid: string, revision: string): Promise<void>;
  /** The volume's revisions, oldest first. */
  revisions(vid: string): Promise<Revision[]>;
  /** Drops a revision (pruning past revisions_to_keep); false when the volume has no such revision. */
  deleteRevision(vid: string, revision: string): Promise<boolean>;
  /** Opens the volume's current content, or one of its revisions, for reading (an export). */
  openRead(vid: string, revision?: string): Promise<VolumeReader>;
  /**
   * Opens a writer for a new content of `sizeBytes` (the volume's size when omitted; an import
   * with a size sets it, ImportWithSize). Only finish() changes the volume.
   */
  openWrite(vid: string, sizeBytes?: number): Promise<VolumeWriter>;
  volumeUsage(vid: string): Promise<VolumeUsage>;
  poolUsage(): Promise<PoolUsage>;
}

/** A persistent dirty bitmap of a volume: which of its blocks were written since it was added or last cleared. */
export interface VolumeBitmap {
  name: string;
  /** The bytes one bit stands for. */
  granularityBytes: number;
  /** Whether writes are recorded in it (QEMU's "auto" flag: enabled whenever the image opens). */
  recording: boolean;
  /** Whether a QEMU that had it open ended without saving it (its "in-use" flag): it no longer tells what changed. */
  inconsistent: boolean;
}

/**
 * A driver whose images keep persistent dirty bitmaps (qcow2), as QEMU's block-dirty-bitmap-*
 * and `qemu-img bitmap` make them: for incremental reads of what changed. A snapshot keeps them
 * recording in the volume's new image; a revert drops them (the content they tracked is gone).
 */
export interface VolumeBitmaps {
  bitmaps(vid: string): Promise<VolumeBitmap[]>;
  /** Adds an empty, recording bitmap; ALREADY_EXISTS (BITMAP_EXISTS). */
  addBitmap(vid: string, name: string, granularityBytes: number): Promise<void>;
  /** Empties a bitmap; NOT_FOUND (BITMAP_NOT_FOUND). */
  clearBitmap(vid: string, name: string): Promise<void>;
  /** Removes a bitmap; false when there was none. */
  removeBitmap(vid: string, name: string): Promise<boolean>;
}

export function keepsBitmaps(driver: StorageDriver): driver is StorageDriver & VolumeBitmaps {
  return typeof (driver as Partial<VolumeBitmaps>).addBitmap === "function";
}

/** A driver that copies a volume at no cost in space or time: reflinks, qcow2 overlays, shared blocks. */
export interface CheapClone {
  /**
   * Makes `targetVid` a copy of `sourceVid`'s current content and size: created when it does not
   * exist, its content replaced (its revisions kept) when it does. Writing to either afterwards
   * does not change the other. NOT_FOUND when the source does not exist.
   */
  clone(sourceVid: string, targetVid: string): Promise<void>;
}

/** Whether `driver` clones cheaply; without it the core copies through a reader and a writer. */
export function canCloneCheaply(driver: StorageDriver): driver is StorageDriver & CheapClone {
  return typeof (driver as Partial<CheapClone>).clone === "function";
}

/**
 * A driver that gives and takes a volume's content as a whole image file of another format than
 * the raw bytes (qcow2): an export as an image, an import of one.
 */
export interface ImageTransfer {
  /** Opens the current content, or a revision, as the bytes of a standalone image file of `format`. */
  openImageRead(vid: string, format: "qcow2", revision?: string): Promise<VolumeReader>;
  /**
   * Opens a writer for the `imageBytes` bytes of an image file of `format`. finish() checks the
   * image (no backing file, external data file or encryption, and `qemu-img check`: else
   * INVALID_ARGUMENT, IMAGE_INVALID), tells `accept` its virtual size (which refuses it by
   * throwing, or rejecting), and makes its content the volume's, in the pool's own format, at once.
   */
  openImageWrite(vid: string, format: "qcow2", imageBytes: number, accept: (sizeBytes: number) => void | Promise<void>): Promise<VolumeWriter>;
}

/** An ephemeral volume's new content: the image's format for QEMU, and the key that opens it. */
export interface EphemeralImage {
  format: "qcow2" | "luks";
  /** 32 random bytes, base64. */
  key: string;
}

/**
 * A driver that encrypts a volume with a key that lives only in memory (Qubes' ephemeral
 * volatile volumes): what a VM writes there is unreadable once the key is dropped.
 */
export interface EphemeralEncryption {
  /**
   * Replaces the volume's content with an empty image of the same size, encrypted with a new
   * random key that it returns and writes nowhere (qemu-img is given it through a file of the
   * pool's temporary folder, readable by Steward alone and removed at once). volumeUsage and
   * openWrite go on counting the volume's own size, not the image's.
   */
  makeEphemeral(vid: string): Promise<EphemeralImage>;
}

export function encryptsEphemeral(driver: StorageDriver): driver is StorageDriver & EphemeralEncryption {
  return typeof (driver as Partial<EphemeralEncryption>).makeEphemeral === "function";
}

/** Whether `driver` transfers images; without it, a pool's volumes come and go as raw bytes only. */
export function transfersImages(driver: StorageDriver): driver is StorageDriver & ImageTransfer {
  const candidate = driver as Partial<ImageTransfer>;
  return typeof candidate.openImageRead === "function" && typeof candidate.openImageWrite === "function";
}

/** How a parameter's text is read: "path" is an absolute path, "bool" is true or false. */
export type StorageDriverParameterType = "str" | "int" | "bool" | "path";

export interface ParameterValueTypes {
  str: string;
  int: number;
  bool: boolean;
  path: string;
}

export type StorageDriverParameterValue = ParameterValueTypes[StorageDriverParameterType];

export interface StorageDriverParameter {
  readonly name: string;
  readonly type: StorageDriverParameterType;
  /** What applies when it is not given, written as a caller would write it; never with required. */
  readonly default?: string;
  /** Whether AddPool must give it. */
  readonly required: boolean;
  /** What it sets, for ListPoolDrivers' description of it. */
  readonly help: string;
}

/** A driver as ListPoolDrivers describes it. */
export interface StorageDriverInfo {
  readonly name: string;
  readonly description: string;
  readonly parameters: readonly StorageDriverParameter[];
}

/** The parameters a driver is opened with, checked and with defaults filled in: undefined only for an optional one without default. */
export type StorageDriverParameterValues = Readonly<Record<string, StorageDriverParameterValue | undefined>>;

/**
 * The drivers a host offers (the registry in adapters/storage): what ListPoolDrivers answers,
 * and how AddPool opens a pool of one, its parameters checked against what the driver takes.
 */
export interface StorageDriverCatalog {
  /** Every driver, by name. */
  list(): StorageDriverInfo[];
  /** One driver; INVALID_ARGUMENT (POOL_DRIVER_NOT_FOUND) when there is no such driver. */
  describe(name: string): StorageDriverInfo;
  /**
   * Opens a pool of driver `name` with the parameters AddPool was given. A folder it names (a
   * "path" parameter) must not be inside, nor hold, a folder of the pools `taken` (nor Steward's
   * own files): FAILED_PRECONDITION (POOL_LOCATION_UNUSABLE).
   */
  open(name: string, given: Readonly<Record<string, string>>, taken?: readonly TakenLocation[]): Promise<StorageDriver>;
  /** The folders a pool of driver `name` with these parameters keeps its volumes in: its "path" parameters, defaults filled in. */
  locations(name: string, given: Readonly<Record<string, string>>): string[];
}

/** A folder a pool keeps its volumes in. */
export interface TakenLocation {
  pool: string;
  path: string;
}
