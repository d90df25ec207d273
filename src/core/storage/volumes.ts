import { callCancelled, InvalidFieldError } from "../errors";
import type { Clock } from "../../ports/clock";
import type { Log } from "../../ports/log";
import { isValidKernelName } from "../../ports/kernel-folder";
import { canCloneCheaply, isValidRevisionId, isValidVid, keepsBitmaps, transfersImages, type Revision, type VolumeBitmap, type StorageDriver, type VolumeReader, type VolumeUsage, type VolumeWriter } from "../../ports/storage-driver";
import { bitmapNotFound, invalidVidField, invalidVolumeSize, isVolumeExists, isVolumeNotFound, revisionNotFound, volumeExists, volumeNotFound } from "../../ports/storage-errors";
import type { Store } from "../../ports/store";
import type { EventLog } from "../events/event-log";
import { HOST_SUBJECT, type EventSubject } from "../model/event";
import type { VolumeFormat, VolumeRecord } from "../model/volume";
import type { CallContext } from "../shared/call-context";
import { KeyedQueue } from "../shared/keyed-queue";
import { unreported, type ProgressReporter } from "../shared/progress";
import type { RequestLedger } from "../shared/request-ledger";
import { requestResultGone } from "../vms/vm-errors";
import type { VmLookup } from "../vms/vm-lookup";
import type { VmOperations } from "../vms/vm-operations";
import type { PowerStates } from "../vms/power-states";
import type { Digests } from "../../ports/digest";
import { checkRevisionsToKeep, type Pools } from "./pools";
import type { VmRecord } from "../model/vm-record";
import { bitmapsUnsupported, checksumMismatch, invalidVolumeRef, kernelModulesReadOnly, kernelVolumeReadOnly, volumeExported, volumeInUse, volumeLimitExceeded, volumeOverLimit, volumeOwnedByVm } from "./storage-errors";
import {
  volumeBitmap,
  volumeClear,
  volumeCreate,
  volumeDelete,
  volumeImportBegin,
  volumeImportEnd,
  volumeImportProgress,
  volumeResize,
  volumeRevert,
  volumeSet,
  volumeSnapshot,
} from "./storage-events";
import { attachedVmNames } from "./attached-vms";
import { copyContent, emptyContent } from "./volume-copy";
import { isMadeAtStart, NEW_VOLUME_BYTES } from "./made-at-start";

/** A volume named by its pool and vid: how the core names every volume. */
export interface VolumeKey {
  pool: string;
  vid: string;
}

/** A volume as a request names it (VolumeRef): by its VM and name, or by its pool and vid. */
export interface VolumeName {
  vm: string;
  name: string;
  pool: string;
  vid: string;
}

/**
 * One message of an export, in order: the header, chunks and progress, the trailer. A chunk's
 * data is the consumer's until it pulls the next item: the export reads every chunk into one
 * buffer, so a consumer that keeps chunks copies them.
 */
export type ExportItem =
  | { kind: "header"; volume: VolumeView; sizeBytes: number }
  | { kind: "chunk"; offset: number; data: Uint8Array }
  | { kind: "progress"; doneBytes: number; totalBytes: number }
  | { kind: "trailer"; sha256: string; bytesSent: number };

/** What an import's first message says of the bytes that follow. */
export interface ImportHeader {
  /** The content's size (0 keeps the volume's); for an image, the image file's, required. */
  sizeBytes: number;
  /** The SHA-256 the bytes must have, as hex; empty for no check. */
  sha256: string;
  /** What the bytes are: the content itself (raw), or a qcow2 image of it. */
  format: VolumeFormat;
  /**
   * The request's names of the format and the size, in refusals: ImportVolume's header fields
   * when absent; a new VM's volume made from an image names the image's.
   */
  fields?: { format: string; size: string };
}

/** The request's names of an import's format and size: its own, or ImportVolume's header fields. */
function fieldsOf(header: ImportHeader): { format: string; size: string } {
  return header.fields ?? { format: "header.format", size: "header.size_bytes" };
}

export interface ImportResult {
  volume: VolumeView;
  bytesReceived: number;
  sha256: string;
}

/** Progress of an export or an import is told at most this often. */
const PROGRESS_EVERY_MS = 1000;

/** What an import skips when it is all zeroes: the grain of the holes it keeps (a qcow2 cluster). */
const HOLE_GRAIN = 64 * 1024;

/** Whether `bytes` are all zero: four at a time where they are aligned (a received chunk may not be). */
function isZeroes(bytes: Uint8Array): boolean {
  const head = (4 - (bytes.byteOffset % 4)) % 4;
  const words = Math.max(0, Math.floor((bytes.length - head) / 4));
  for (let i = 0; i < Math.min(head, bytes.length); i++) if (bytes[i] !== 0) return false;
  const view = new Uint32Array(bytes.buffer, bytes.byteOffset + head, words);
  for (let i = 0; i < view.length; i++) if (view[i] !== 0) return false;
  for (let i = head + words * 4; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** Writes `chunk` at `offset`, but for its runs of zeroes (HOLE_GRAIN each), which stay holes. */
async function writeNonZero(writer: VolumeWriter, offset: number, chunk: Uint8Array): Promise<void> {
  let start = -1;
  for (let at = 0; at < chunk.length; at += HOLE_GRAIN) {
    const data = !isZeroes(chunk.subarray(at, at + HOLE_GRAIN));
    if (data && start < 0) start = at;
    if (!data && start >= 0) {
      await writer.write(offset + start, chunk.subarray(start, at));
      start = -1;
    }
  }
  if (start >= 0) await writer.write(offset + start, chunk.subarray(start));
}

/** Whether the driver still has the volume's content, whole enough to tell its size. */
async function contentRemains(driver: StorageDriver, vid: string): Promise<boolean> {
  try {
    await driver.volumeUsage(vid);
    return true;
  } catch {
    return false;
  }
}

/** A volume with what it is and takes now, as GetVolume tells it. */
export interface VolumeView extends VolumeRecord {
  sizeBytes: number;
  usageBytes: number;
  /** Its own, or its pool's when it follows the pool. */
  effectiveRevisionsToKeep: number;
  hostPath: string | undefined;
  /** The VM owning it, by name; empty for a pool's own volume. */
  vmName: string;
  /** The VMs it is attached to as an extra disk, by name. */
  attachments: { vm: string; name: string; rw: boolean; order: number }[];
  /** A snap_on_start volume of a running VM whose source changed since the start's snapshot (Qubes' is_outdated). */
  isOutdated: boolean;
}

/** Where a VM's kernel volume comes from (KernelVolumes): the kernel it boots, and that kernel's modules as a volume. */
export interface KernelVolumeSource {
  /** The pool the kernels' modules are the volumes of (linux-kernel). */
  readonly name: string;
  kernelOf(vm: VmRecord): string;
  of(vm: VmRecord): Promise<VolumeView | undefined>;
  volume(kernel: string, vm?: VmRecord): Promise<VolumeView | undefined>;
  all(): Promise<VolumeView[]>;
  open(kernel: string): Promise<VolumeReader | undefined>;
}

/** A kernel's modules that a VolumeRef names: by the VM that boots it (vm, name kernel), or as pool linux-kernel's vid. */
interface NamedKernel {
  kernel: string;
  vm?: VmRecord;
}

/** A volume's source as its record keeps it, "pool:vid", read. */
export function parseVolumeSource(source: string): VolumeKey {
  const colon = source.indexOf(":");
  return { pool: source.slice(0, colon), vid: source.slice(colon + 1) };
}

/** The record of a volume about to be made (state creating): a pool's own, writable and saved, unless `fields` say otherwise. */
export function newVolumeRecord(fields: Pick<VolumeRecord, "pool" | "vid" | "format"> & Partial<VolumeRecord>, now: Date): VolumeRecord {
  return {
    vmQid: undefined,
    name: "",
    rw: true,
    snapOnStart: false,
    saveOnStop: true,
    source: "",
    sourceStamp: "",
    revisionsToKeep: undefined,
    ephemeral: false,
    limitBytes: 0,
    internal: false,
    state: "creating",
    createdAt: now,
    ...fields,
  };
}

/** Volume sizes are whole sectors, as the proto says. */
export const SECTOR = 512;

/** Refuses a SHA-256 that is neither empty nor 64 hex digits. */
export function checkSha256(sha256: string, field: string): void {
  if (sha256 !== "" && !/^[0-9a-fA-F]{64}$/.test(sha256)) throw new InvalidFieldError(field, "is 64 hex digits, or empty");
}

/**
 * The volumes of the host's pools (Qubes' pool.volume.* and vm.volume.*): their records in the
 * store, their bytes in their pools' drivers. A change of one volume runs alone (one queue per
 * volume), and one that touches files is written down before it begins, so that a start after
 * a crash finishes or undoes it (settle).
 */
export class Volumes {
  private readonly queue = new KeyedQueue();
  /** The drops of old revisions waiting or under way, by "pool/vid": what reads a volume's images waits for its volume's (settled). */
  private readonly pruning = new Map<string, Promise<void>>();
  /** The pool volumes that VMs being made are taking as theirs, by "pool/vid": no change of them begins meanwhile. */
  private readonly taken = new Map<string, symbol>();

  constructor(
    private readonly store: Store,
    private readonly pools: Pools,
    private readonly events: EventLog,
    private readonly ledger: RequestLedger,
    private readonly clock: Clock,
    private readonly log: Log,
    private readonly lookup: VmLookup,
    private readonly vmOperations: VmOperations,
    private readonly powerStates: PowerStates,
    private readonly digests: Digests,
    private readonly kernels?: KernelVolumeSource,
  ) {}

  /**
   * The volume a VolumeRef names, to change it: INVALID_ARGUMENT (INVALID_VOLUME_REF) unless it
   * gives exactly one form; NOT_FOUND (VM_NOT_FOUND, VOLUME_NOT_FOUND); FAILED_PRECONDITION
   * (VOLUME_READ_ONLY) for a kernel's modules, which only the host changes.
   */
  resolve(ref: VolumeName | undefined, field = "volume"): VolumeKey {
    const named = this.named(ref, field);
    if ("kernel" in named) {
      if (named.vm !== undefined) throw kernelVolumeReadOnly(named.vm.name, named.kernel);
      throw kernelModulesReadOnly(this.kernels!.name, named.kernel);
    }
    return named;
  }

  /** What a VolumeRef names: a volume of the store, or a kernel's modules. */
  private named(ref: VolumeName | undefined, field: string): VolumeKey | NamedKernel {
    const byVm = ref !== undefined && (ref.vm !== "" || ref.name !== "");
    const byPool = ref !== undefined && (ref.pool !== "" || ref.vid !== "");
    if (ref === undefined || byVm === byPool) throw invalidVolumeRef(field);
    if (byPool) {
      if (ref.pool === "") throw new InvalidFieldError(`${field}.pool`, "is required with vid");
      if (ref.vid === "") throw new InvalidFieldError(`${field}.vid`, "is required with pool");
      if (this.kernels !== undefined && ref.pool === this.kernels.name) {
        if (!isValidKernelName(ref.vid)) throw new InvalidFieldError(`${field}.vid`, `a volume of pool ${ref.pool} is a kernel's name: letters, digits, '.', '_', '+' or '-', without '/' or '..'`);
        return { kernel: ref.vid };
      }
      checkVid(ref.vid, `${field}.vid`);
      return { pool: ref.pool, vid: ref.vid };
    }
    const vm = this.lookup.resolve(ref.vm, `${field}.vm`);
    if (ref.name === "") throw new InvalidFieldError(`${field}.name`, "is required with vm: root, private, volatile or kernel");
    const volume = this.store.volumes.ofVm(vm.qid).find((candidate) => candidate.name === ref.name && candidate.state === "ready");
    if (!volume && ref.name === "kernel" && this.kernels && this.kernels.kernelOf(vm) !== "") return { kernel: this.kernels.kernelOf(vm), vm };
    if (!volume) throw volumeNotFound(`${vm.name}:${ref.name}`);
    return { pool: volume.pool, vid: volume.vid };
  }

  /** The volume a VolumeRef names, as GetVolume shows it: a kernel's modules too. */
  async find(ref: VolumeName | undefined, field = "volume"): Promise<VolumeView> {
    const named = this.named(ref, field);
    if (!("kernel" in named)) return this.get(named);
    const volume = await this.kernels!.volume(named.kernel, named.vm);
    if (volume === undefined) throw volumeNotFound(named.vm === undefined ? named.kernel : `${named.vm.name}:kernel`);
    return volume;
  }

  /**
   * ExportVolume of what a VolumeRef names: a volume of the store (export), or a kernel's
   * modules, as raw bytes (they have no revisions).
   */
  async *exportNamed(ref: VolumeName | undefined, revision: string, chunkBytes: number, ctx: CallContext, format: VolumeFormat = "raw"): AsyncGenerator<ExportItem> {
    const named = this.named(ref, "volume");
    if (!("kernel" in named)) {
      yield* this.export(named, revision, chunkBytes, ctx, format);
      return;
    }
    const volume = await this.find(ref);
    if (revision !== "") throw revisionNotFound(volume.vid, revision);
    if (format !== "raw") throw new InvalidFieldError("format", `the modules of kernel ${named.kernel} are raw bytes only`);
    const reader = await this.kernels!.open(named.kernel);
    if (reader === undefined) throw volumeNotFound(named.kernel);
    yield* this.stream(volume, reader, chunkBytes, ctx);
  }

  /** The volumes a VM owns, by name, and its kernel volume when it boots a kernel with modules. */
  async ofVm(vm: string): Promise<VolumeView[]> {
    const record = this.lookup.resolve(vm, "vm");
    const own = await Promise.all(this.store.volumes.ofVm(record.qid).filter((volume) => volume.state === "ready").map((volume) => this.view(volume)));
    const kernel = own.some((volume) => volume.name === "kernel") ? undefined : await this.kernels?.of(record);
    return kernel === undefined ? own : [...own, kernel];
  }

  /**
   * Finishes what a crash cut short: a volume being made is removed, one being deleted is
   * deleted, and so are the volumes of a VM whose making never committed. Call once the pools
   * are open, before any VM is made.
   */
  async settle(): Promise<void> {
    for (const volume of this.store.volumes.unsettled()) {
      // A VM's removal that never committed: its VM is still there, and so are its volumes.
      if (volume.state === "deleting" && volume.vmQid !== undefined && this.store.vms.byQid(volume.vmQid)) {
        this.store.transaction(() => this.store.volumes.update({ ...volume, state: "ready" }));
        continue;
      }
      await this.settleGone(volume);
    }
    for (const volume of this.store.volumes.ofMissingVms()) await this.settleGone(volume);
  }

  /** Deletes a volume nothing should have any more: its bytes, then its record. */
  private async settleGone(volume: VolumeRecord): Promise<void> {
    try {
      await this.pools.driver(volume.pool).delete(volume.vid);
      this.store.transaction(() => this.store.volumes.remove(volume.pool, volume.vid));
      this.log.info({ pool: volume.pool, vid: volume.vid, state: volume.state }, "settled a volume change a stop cut short");
    } catch (error) {
      this.log.warn({ pool: volume.pool, vid: volume.vid, err: error instanceof Error ? error.message : String(error) }, "a volume change a stop cut short cannot be settled yet");
    }
  }

  async get(key: VolumeKey): Promise<VolumeView> {
    return this.view(this.record(key));
  }

  /** A pool's volumes, by vid: those being made or deleted are left out. */
  async inPool(pool: string): Promise<VolumeView[]> {
    if (this.kernels !== undefined && pool === this.kernels.name) return this.kernels.all();
    this.pools.driver(pool);
    const records = this.store.volumes.inPool(pool, "", Number.MAX_SAFE_INTEGER).filter((volume) => volume.state === "ready");
    return Promise.all(records.map((volume) => this.view(volume)));
  }

  /**
   * Makes an empty volume in a pool (vm_concierge's CreateDiskImage). One of that vid with the
   * same size and format is success with `existed`; another is ALREADY_EXISTS.
   */
  async create(pool: string, vid: string, sizeBytes: number, format: VolumeFormat | undefined, ctx: CallContext, requestId = ""): Promise<{ volume: VolumeView; existed: boolean }> {
    this.ledger.checkKey(requestId);
    checkVid(vid, "vid");
    const driver = this.pools.driver(pool);
    checkSize(vid, sizeBytes, "size_bytes");
    if (format !== undefined && format !== driver.format) throw new InvalidFieldError("format", `pool ${pool} keeps ${driver.format} volumes, not ${format}`);
    return this.queue.run(`${pool}/${vid}`, { caller: ctx, what: `create volume ${vid}` }, async () => {
      const asked = { pool, vid, sizeBytes };
      const earlier = this.ledger.earlier(requestId, "CreateVolume", asked);
      if (earlier !== undefined) {
        const made = this.store.volumes.get(pool, vid);
        if (!made || made.state !== "ready") throw requestResultGone(requestId, "volume");
        return { volume: await this.view(made), existed: false };
      }
      let existing = this.store.volumes.get(pool, vid);
      // A pool's volume whose delete failed half-way: it is deleted first (or the call says why it cannot be).
      if (existing?.state === "deleting" && existing.vmQid === undefined) {
        await this.finishDelete(existing, driver);
        existing = undefined;
      }
      if (existing?.state === "ready") {
        const view = await this.view(existing);
        if (view.sizeBytes === sizeBytes && existing.vmQid === undefined) return { volume: view, existed: true };
        throw volumeExists(vid);
      }
      if (existing !== undefined) throw volumeInUse(vid, `it is being ${existing.state === "creating" ? "made" : "deleted"}`, []);
      const record = newVolumeRecord({ pool, vid, format: driver.format }, this.clock.now());
      this.store.transaction(() => this.store.volumes.insert(record));
      try {
        // A new volume counts its whole size against the pool's limit: its VM may fill it.
        await this.pools.withRoom(pool, sizeBytes, () => driver.create(vid, sizeBytes), 0);
      } catch (error) {
        this.store.transaction(() => this.store.volumes.remove(pool, vid));
        throw error;
      }
      const made = { ...record, state: "ready" as const };
      this.store.transaction(() => {
        this.store.volumes.update(made);
        this.events.append(volumeCreate(HOST_SUBJECT, made, sizeBytes));
        this.ledger.remember(requestId, "CreateVolume", asked, vid);
      });
      return { volume: await this.view(made), existed: false };
    });
  }

  /** Deletes a pool's volume (vm_concierge's DestroyDiskImage); false when there was none. A VM's own volume goes with its VM. */
  async delete(key: VolumeKey, ctx: CallContext): Promise<boolean> {
    checkVid(key.vid, "vid");
    const driver = this.pools.driver(key.pool);
    this.refuseTaken(key);
    return this.queue.run(`${key.pool}/${key.vid}`, { caller: ctx, what: `delete volume ${key.vid}` }, async () => {
      const volume = this.store.volumes.get(key.pool, key.vid);
      if (!volume || volume.state === "creating") return false;
      if (volume.vmQid !== undefined) throw volumeOwnedByVm(volume.vid, this.vmName(volume));
      // A delete that failed half-way is done again.
      if (volume.state === "deleting") return this.finishDelete(volume, driver);
      this.store.transaction(() => {
        const users = attachedVmNames(this.store, volume);
        if (users.length > 0) throw volumeInUse(volume.vid, `it is attached to ${users.join(", ")}: detach it first`, users);
        refuseExported(this.store, volume);
        this.store.volumes.update({ ...volume, state: "deleting" });
      });
      try {
        return await this.finishDelete(volume, driver);
      } catch (error) {
        // Refused with the content still whole (a file it may not remove): the volume is as it
        // was. Else it stays being deleted, done again by the next DeleteVolume or CreateVolume
        // of its vid, or at the next start.
        if (await contentRemains(driver, volume.vid)) this.store.transaction(() => this.store.volumes.update(volume));
        throw error;
      }
    });
  }

  /** Deletes the bytes of a pool's volume marked deleting, then its record, telling of it. */
  private async finishDelete(volume: VolumeRecord, driver: StorageDriver): Promise<true> {
    await driver.delete(volume.vid);
    this.store.transaction(() => {
      this.store.volumes.remove(volume.pool, volume.vid);
      this.events.append(volumeDelete(HOST_SUBJECT, volume));
    });
    return true;
  }

  /** The revisions of what a VolumeRef names, the newest first: none for a kernel's modules, which keep none. */
  async revisionsNamed(ref: VolumeName | undefined): Promise<Revision[]> {
    const named = this.named(ref, "volume");
    if (!("kernel" in named)) return this.revisions(named);
    await this.find(ref);
    return [];
  }

  /** The volume's revisions, the newest first, once the prune of its last snapshot is done. */
  async revisions(key: VolumeKey): Promise<Revision[]> {
    this.record(key);
    await this.settled(key);
    const volume = this.record(key);
    try {
      return (await this.pools.driver(volume.pool).revisions(volume.vid)).reverse();
    } catch (error) {
      // A volume that no start made yet has no revisions.
      if (isMadeAtStart(volume) && isVolumeNotFound(error)) return [];
      throw error;
    }
  }

  /** Saves the current content as a revision; the oldest past revisions_to_keep go. A retry with request_id returns the first one's revision. */
  async snapshot(key: VolumeKey, ctx: CallContext, requestId = ""): Promise<Revision> {
    this.ledger.checkKey(requestId);
    return this.change(key, ctx, "snapshot", { unexported: true }, async (volume, driver) => {
      const earlier = this.ledger.earlier(requestId, "SnapshotVolume", key);
      if (earlier !== undefined) {
        const saved = (await driver.revisions(volume.vid)).find((revision) => revision.id === earlier);
        if (!saved) throw requestResultGone(requestId, "revision");
        return saved;
      }
      const revision = await this.keepRevision(volume, driver);
      this.store.transaction(() => this.ledger.remember(requestId, "SnapshotVolume", key, revision.id));
      return revision;
    });
  }

  /** Brings the volume back to `revision` (the newest when empty), keeping its current content as a revision first. */
  async revert(key: VolumeKey, revision: string, ctx: CallContext): Promise<VolumeView> {
    if (revision !== "") checkRevision(revision, "revision");
    return this.change(key, ctx, "revert", { halted: "reverted" }, async (volume, driver) => {
      const revisions = await driver.revisions(volume.vid);
      const target = revision === "" ? revisions.at(-1)?.id : revision;
      // Checked before the current content is kept, so that a wrong id changes nothing.
      const saved = revisions.find((each) => each.id === target);
      if (target === undefined || saved === undefined) throw revisionNotFound(volume.vid, revision || "(newest)");
      // The revision brings its size back: within the volume's limit, and its growth within the pool's, as a resize.
      if (volume.limitBytes > 0 && saved.sizeBytes > volume.limitBytes) throw volumeLimitExceeded(volume.vid, volume.limitBytes, saved.sizeBytes);
      const { sizeBytes: oldSize } = await driver.volumeUsage(volume.vid);
      const growth = Math.max(0, saved.sizeBytes - oldSize);
      // Checked before the current content is kept too, so that a refused revert keeps no revision.
      await this.pools.requireRoom(volume.pool, growth);
      await this.keepRevision(volume, driver, [target]);
      await this.pools.withRoom(volume.pool, growth, () => driver.revert(volume.vid, target), 0);
      this.store.transaction(() => {
        this.events.append(volumeRevert(this.subjectOf(volume), volume, target));
        if (saved.sizeBytes !== oldSize) this.events.append(volumeResize(this.subjectOf(volume), volume, saved.sizeBytes, oldSize));
      });
      return this.view(volume);
    });
  }

  /** Sets the volume's size; smaller only with allowShrink, which cuts its end off. */
  async resize(key: VolumeKey, sizeBytes: number, allowShrink: boolean, ctx: CallContext): Promise<VolumeView> {
    return this.change(key, ctx, "resize", { halted: allowShrink ? "shrunk" : undefined, unexported: true }, async (volume, driver) => {
      checkSize(volume.vid, sizeBytes, "size_bytes");
      if (volume.limitBytes > 0 && sizeBytes > volume.limitBytes) throw volumeLimitExceeded(volume.vid, volume.limitBytes, sizeBytes);
      const { sizeBytes: oldSize } = await driver.volumeUsage(volume.vid);
      if (sizeBytes < oldSize && allowShrink) await copyContent(driver, volume.vid, driver, volume.vid, { sizeBytes });
      else await this.pools.withRoom(volume.pool, Math.max(0, sizeBytes - oldSize), () => driver.resize(volume.vid, sizeBytes), 0);
      if (sizeBytes !== oldSize) this.store.transaction(() => this.events.append(volumeResize(this.subjectOf(volume), volume, sizeBytes, oldSize)));
      return this.view(volume);
    });
  }

  /** Empties the volume, keeping its size (vm.volume.Clear). */
  async clear(key: VolumeKey, ctx: CallContext): Promise<VolumeView> {
    return this.change(key, ctx, "clear", { halted: "cleared" }, async (volume, driver) => {
      await emptyContent(driver, volume.vid);
      this.store.transaction(() => this.events.append(volumeClear(this.subjectOf(volume), volume)));
      return this.view(volume);
    });
  }

  /** The volume's persistent dirty bitmaps (none where its pool keeps none). */
  async bitmaps(key: VolumeKey): Promise<VolumeBitmap[]> {
    const driver = this.pools.driver(key.pool);
    this.record(key);
    if (!keepsBitmaps(driver)) return [];
    try {
      return await driver.bitmaps(key.vid);
    } catch (error) {
      // A volume its VM's first start makes has no image yet, nor bitmaps.
      if (isVolumeNotFound(error)) return [];
      throw error;
    }
  }

  /**
   * Adds, clears or removes a dirty bitmap (qcow2 pools): while no VM runs with the volume and
   * no export serves it, as the image then has no other writer to keep the bitmap for.
   */
  async changeBitmap(key: VolumeKey, change: BitmapChange, ctx: CallContext): Promise<VolumeBitmap | undefined> {
    checkBitmapName(change.name, "name");
    if (change.kind === "add") checkGranularity(change.granularityBytes, "granularity_bytes");
    // Told before whether the volume may change now: a raw pool's never keeps one.
    const pool = this.pools.driver(key.pool);
    if (!keepsBitmaps(pool)) throw bitmapsUnsupported(key.pool, pool.format);
    return this.change(key, ctx, `${change.kind} a bitmap of`, { halted: `given a bitmap ${change.kind}` }, async (volume, driver) => {
      if (!keepsBitmaps(driver)) throw bitmapsUnsupported(volume.pool, driver.format);
      if (change.kind === "add") await driver.addBitmap(volume.vid, change.name, change.granularityBytes || DEFAULT_BITMAP_GRANULARITY);
      else if (change.kind === "clear") await driver.clearBitmap(volume.vid, change.name);
      else if (!(await driver.removeBitmap(volume.vid, change.name)) && !change.allowMissing) throw bitmapNotFound(volume.vid, change.name);
      this.store.transaction(() => this.events.append(volumeBitmap(this.subjectOf(volume), volume, change.kind, change.name)));
      return (await driver.bitmaps(volume.vid)).find((bitmap) => bitmap.name === change.name);
    });
  }

  /** Sets a quota on the volume's size; refused below its size. 0 removes it. */
  async setLimit(key: VolumeKey, limitBytes: number, ctx: CallContext): Promise<VolumeView> {
    return this.change(key, ctx, "set limit", {}, async (volume, driver) => {
      const { sizeBytes } = await driver.volumeUsage(volume.vid);
      if (limitBytes > 0 && sizeBytes > limitBytes) throw volumeOverLimit(volume.vid, sizeBytes, limitBytes);
      return this.view(this.setting(volume, { limitBytes }, "limit_bytes", String(volume.limitBytes), String(limitBytes)));
    });
  }

  /** Sets revisions_to_keep, rw or ephemeral (vm.volume.Set.*). */
  async setProperty(key: VolumeKey, property: { revisionsToKeep: number } | { rw: boolean } | { ephemeral: boolean }, ctx: CallContext): Promise<VolumeView> {
    const halted = "revisionsToKeep" in property ? undefined : "changed";
    return this.change(key, ctx, "set a property", { halted }, async (volume, driver) => {
      if ("revisionsToKeep" in property) {
        checkRevisionsToKeep(property.revisionsToKeep, "revisions_to_keep");
        const old = String(this.revisionsToKeep(volume));
        const changed = this.setting(volume, { revisionsToKeep: property.revisionsToKeep }, "revisions_to_keep", old, String(property.revisionsToKeep));
        await this.prune(changed, driver);
        return this.view(changed);
      }
      if ("rw" in property) return this.view(this.setting(volume, { rw: property.rw }, "rw", pyBool(volume.rw), pyBool(property.rw)));
      // A key that lives only while the VM runs leaves nothing to save at a stop.
      if (property.ephemeral && (volume.saveOnStop || volume.snapOnStart)) {
        throw new InvalidFieldError("ephemeral", `${volume.vid} is ${volume.saveOnStop ? "saved at each stop" : "a snapshot taken at each start"}: only a volume made fresh at each start (volatile) can be ephemeral`);
      }
      return this.view(this.setting(volume, { ephemeral: property.ephemeral }, "ephemeral", pyBool(volume.ephemeral), pyBool(property.ephemeral)));
    });
  }

  /**
   * The volume's bytes, or a revision's, for ExportVolume: the volume first, then its data in
   * chunks of at most `chunkBytes` that skip holes, progress at most once a second, and last the
   * SHA-256 of the whole content (holes as zeroes). Memory stays one chunk whatever the size;
   * the consumer pulls, so a slow client slows the reads, and stopping (the call cancelled)
   * closes the reader.
   */
  async *export(key: VolumeKey, revision: string, chunkBytes: number, ctx: CallContext, format: VolumeFormat = "raw"): AsyncGenerator<ExportItem> {
    if (revision !== "") checkRevision(revision, "revision");
    this.record(key);
    await this.settled(key);
    const volume = this.record(key);
    const driver = this.pools.driver(volume.pool);
    await this.makeIfAbsent(volume);
    const saved = revision === "" ? undefined : revision;
    const view = await this.view(volume);
    let reader: VolumeReader;
    if (format === "raw") reader = await driver.openRead(volume.vid, saved);
    else if (transfersImages(driver)) reader = await driver.openImageRead(volume.vid, format, saved);
    else throw new InvalidFieldError("format", `pool ${volume.pool} gives raw bytes only`);
    yield* this.stream(view, reader, chunkBytes, ctx);
  }

  /** An export's items, read from `reader` (closed at the end, or when the consumer stops). */
  private async *stream(volume: VolumeView, reader: VolumeReader, chunkBytes: number, ctx: CallContext): AsyncGenerator<ExportItem> {
    const digest = this.digests.sha256();
    try {
      const total = reader.sizeBytes;
      yield { kind: "header", volume, sizeBytes: total };
      const zeroes = new Uint8Array(chunkBytes);
      // One buffer for every chunk: 1 MiB allocated per chunk made the collector run a full
      // collection every few tens of MiB.
      const buffer = new Uint8Array(chunkBytes);
      let sent = 0;
      let told = this.clock.now().getTime();
      for (const extent of await reader.extents()) {
        for (let offset = extent.offset; offset < extent.offset + extent.length; offset += chunkBytes) {
          if (ctx.signal.aborted) throw callCancelled("the export");
          const length = Math.min(chunkBytes, extent.offset + extent.length - offset);
          if (extent.allocated) {
            const data = await reader.read(offset, length, buffer);
            await digest.update(data);
            sent += length;
            yield { kind: "chunk", offset, data };
          } else {
            await digest.update(length === chunkBytes ? zeroes : zeroes.subarray(0, length));
          }
          const now = this.clock.now().getTime();
          if (now - told >= PROGRESS_EVERY_MS) {
            told = now;
            yield { kind: "progress", doneBytes: offset + length, totalBytes: total };
          }
        }
      }
      yield { kind: "trailer", sha256: await digest.hex(), bytesSent: sent };
    } finally {
      digest.discard();
      await reader.close();
    }
  }

  /**
   * Replaces the volume's content with the bytes of `chunks` (ImportVolume), all or nothing:
   * they go to a writer that is finished only once every byte of `sizeBytes` arrived and the
   * SHA-256 (when given) matches; anything else aborts it, and the volume is as it was. A VM's
   * volume is imported while the VM is halted, and the VM is held meanwhile. Chunks of zeroes
   * are not written, so holes stay holes.
   */
  async import(key: VolumeKey, header: ImportHeader, chunks: AsyncIterable<Uint8Array>, ctx: CallContext): Promise<ImportResult> {
    checkSha256(header.sha256, "header.sha256");
    return this.change(key, ctx, "import into", { halted: "imported into" }, (volume, driver) => this.importInto(volume, driver, header, chunks, ctx));
  }

  /**
   * Fills a volume being made for a new VM (its record creating, its file made empty) with the
   * bytes of an import stream or an image, as import does: all or nothing, checked, told to
   * `progress` as bytes received.
   */
  async fillNew(key: VolumeKey, header: ImportHeader, chunks: AsyncIterable<Uint8Array>, ctx: CallContext, progress?: (receivedBytes: number) => void): Promise<ImportResult> {
    const volume = this.store.volumes.get(key.pool, key.vid);
    if (volume?.state !== "creating") throw volumeNotFound(key.vid);
    return this.importInto(volume, this.pools.driver(key.pool), header, chunks, ctx, progress);
  }

  /**
   * The volume a new VM may take as its own (CreateVm's existing): a pool's ready volume that
   * no VM owns or has attached. NOT_FOUND (VOLUME_NOT_FOUND); FAILED_PRECONDITION (VOLUME_IN_USE).
   */
  adoptable(key: VolumeKey, field: string, own?: { held: boolean }): VolumeRecord {
    checkVid(key.vid, `${field}.vid`);
    const volume = this.record(key);
    const name = `${key.pool}/${key.vid}`;
    if (!own?.held && this.taken.has(name)) throw volumeInUse(volume.vid, "another VM being made is taking it", []);
    if (!own?.held && this.queue.busy(name)) throw volumeInUse(volume.vid, "a change of it is under way: try again once it is done", []);
    if (volume.internal) throw volumeNotFound(key.vid);
    if (volume.vmQid !== undefined) throw volumeInUse(volume.vid, `it is ${this.vmName(volume)}'s ${volume.name} volume`, [this.vmName(volume)]);
    const users = attachedVmNames(this.store, volume);
    if (users.length > 0) throw volumeInUse(volume.vid, `it is attached to ${users.join(", ")}: detach it first`, users);
    return volume;
  }

  /**
   * Holds a pool's volume for a new VM that takes it (adoptable, checked now): until the
   * returned release, a change of it is refused (VOLUME_IN_USE), so that none runs under the VM
   * that owns it once it is stored.
   */
  holdForAdoption(key: VolumeKey, field: string): () => void {
    this.adoptable(key, field);
    const name = `${key.pool}/${key.vid}`;
    const hold = Symbol(name);
    this.taken.set(name, hold);
    return () => {
      if (this.taken.get(name) === hold) this.taken.delete(name);
    };
  }

  /** Refuses a change of a volume a VM being made is taking. */
  private refuseTaken(key: VolumeKey): void {
    if (this.taken.has(`${key.pool}/${key.vid}`)) throw volumeInUse(key.vid, "a VM being made is taking it as its own", []);
  }

  /** An import into a volume whose turn it is: raw bytes into a writer beside the old content, or an image checked and converted. */
  private async importInto(volume: VolumeRecord, driver: StorageDriver, header: ImportHeader, chunks: AsyncIterable<Uint8Array>, ctx: CallContext, progress?: (receivedBytes: number) => void): Promise<ImportResult> {
    if (header.format === "qcow2") return this.importImage(volume, driver, header, chunks, ctx, progress);
    const sizeBytes = header.sizeBytes === 0 ? (await driver.volumeUsage(volume.vid)).sizeBytes : header.sizeBytes;
    checkSize(volume.vid, sizeBytes, fieldsOf(header).size);
    if (volume.limitBytes > 0 && sizeBytes > volume.limitBytes) throw volumeLimitExceeded(volume.vid, volume.limitBytes, sizeBytes);
    // The new content is written beside the old one, which stays until the swap.
    return this.pools.withRoom(volume.pool, sizeBytes, async () => this.receive(volume, await driver.openWrite(volume.vid, sizeBytes), sizeBytes, header, chunks, ctx, progress));
  }

  /**
   * An import of a qcow2 image: its bytes go to a file of their own, which the driver checks and
   * converts into the volume's content at the end; the image's virtual size is the volume's new
   * size, within its limit.
   */
  private async importImage(volume: VolumeRecord, driver: StorageDriver, header: ImportHeader, chunks: AsyncIterable<Uint8Array>, ctx: CallContext, progress?: (receivedBytes: number) => void): Promise<ImportResult> {
    const fields = fieldsOf(header);
    if (!transfersImages(driver)) throw new InvalidFieldError(fields.format, `pool ${volume.pool} takes raw bytes only`);
    const imageBytes = header.sizeBytes;
    if (imageBytes === 0) throw new InvalidFieldError(fields.size, "is required for an image: the length of the image file");
    const { sizeBytes: oldSize } = await driver.volumeUsage(volume.vid);
    const accept = async (sizeBytes: number) => {
      if (volume.limitBytes > 0 && sizeBytes > volume.limitBytes) throw volumeLimitExceeded(volume.vid, volume.limitBytes, sizeBytes);
      // Its virtual size counts as a new volume's does: the VM may fill it.
      await this.pools.requireRoom(volume.pool, Math.max(0, sizeBytes - oldSize));
    };
    // The image, then its conversion, beside the old content until the swap.
    return this.pools.withRoom(volume.pool, 2 * imageBytes, async () => this.receive(volume, await driver.openImageWrite(volume.vid, "qcow2", imageBytes, accept), imageBytes, header, chunks, ctx, progress));
  }

  /** An import's work once it may begin: the bytes into the writer, its events, the check, the swap. */
  private async receive(volume: VolumeRecord, writer: VolumeWriter, sizeBytes: number, header: ImportHeader, chunks: AsyncIterable<Uint8Array>, ctx: CallContext, progress?: (receivedBytes: number) => void): Promise<ImportResult> {
    const subject = this.subjectOf(volume);
    this.store.transaction(() => this.events.append(volumeImportBegin(subject, volume, sizeBytes)));
    const digest = this.digests.sha256();
    let received = 0;
    let told = this.clock.now().getTime();
    try {
      for await (const chunk of chunks) {
        if (ctx.signal.aborted) throw callCancelled("the import");
        if (received + chunk.length > sizeBytes) throw new InvalidFieldError("chunk", `the stream carries more than the ${sizeBytes} bytes its header announced`);
        // Hashed while the write runs: the writer's file I/O happens off the event loop.
        const written = writeNonZero(writer, received, chunk);
        await Promise.all([written, digest.update(chunk)]);
        received += chunk.length;
        progress?.(received);
        const now = this.clock.now().getTime();
        if (now - told >= PROGRESS_EVERY_MS) {
          told = now;
          this.store.transaction(() => this.events.append(volumeImportProgress(subject, volume, received, sizeBytes)));
        }
      }
      if (ctx.signal.aborted) throw callCancelled("the import");
      if (received !== sizeBytes) throw new InvalidFieldError(fieldsOf(header).size, `the stream ended after ${received} of the ${sizeBytes} bytes its header announced`);
      const sha256 = await digest.hex();
      if (header.sha256 !== "" && header.sha256.toLowerCase() !== sha256) throw checksumMismatch(volume.vid, header.sha256.toLowerCase(), sha256);
      await writer.finish();
      this.store.transaction(() => this.events.append(volumeImportEnd(subject, volume, true, received)));
      return { volume: await this.view(volume), bytesReceived: received, sha256 };
    } catch (error) {
      digest.discard();
      await writer.abort();
      this.store.transaction(() => this.events.append(volumeImportEnd(subject, volume, false, received)));
      throw error;
    }
  }

  /**
   * Refuses a CloneVolume that cannot succeed as things stand, before its operation begins: a
   * volume missing, the target being the source, the target's VM not halted (checked again,
   * holding the VM, as the copy begins).
   */
  checkClone(source: VolumeKey, target: VolumeKey): void {
    this.record(source);
    const volume = this.record(target);
    if (source.pool === target.pool && source.vid === target.vid) throw new InvalidFieldError("target", "is the source: a volume is not cloned onto itself");
    const vm = volume.vmQid === undefined ? undefined : this.store.vms.byQid(volume.vmQid);
    if (vm) this.powerStates.requireHalted(vm, `cloned into (its volume ${volume.name})`);
  }

  /**
   * Replaces the target's content with a copy of the source's (vm.volume.CloneFrom): a reflink
   * or an overlay where both are in one pool whose driver clones cheaply, else a copy through a
   * reader and a writer, told to `progress` in bytes, all or nothing (a failure or cancellation
   * leaves the target as it was). The source is read as it was when the copy opened it: an
   * import or revert meanwhile swaps in another file and leaves the reader's alone.
   */
  async clone(source: VolumeKey, target: VolumeKey, ctx: CallContext, progress: ProgressReporter = unreported): Promise<VolumeView> {
    this.checkClone(source, target);
    return this.change(target, ctx, "clone into", { halted: "cloned into" }, async (volume, driver) => {
      await this.settled(source);
      await this.makeIfAbsent(this.record(source));
      const sourceDriver = this.pools.driver(source.pool);
      const { sizeBytes, allocatedBytes } = await sourceDriver.volumeUsage(this.record(source).vid);
      if (volume.limitBytes > 0 && sizeBytes > volume.limitBytes) throw volumeLimitExceeded(volume.vid, volume.limitBytes, sizeBytes);
      const cheap = source.pool === target.pool && canCloneCheaply(driver) ? driver : undefined;
      // The copy writes the source's data, and the target grows to the source's size, which its VM may fill.
      const growth = Math.max(0, sizeBytes - (await driver.volumeUsage(volume.vid)).sizeBytes);
      const subject = this.subjectOf(volume);
      this.store.transaction(() => this.events.append(volumeImportBegin(subject, volume, sizeBytes, source)));
      try {
        await this.pools.withRoom(volume.pool, Math.max(growth, cheap ? 0 : allocatedBytes), async () => {
          if (cheap) await cheap.clone(source.vid, volume.vid);
          else await copyContent(sourceDriver, source.vid, driver, volume.vid, { progress, signal: ctx.signal });
        });
      } catch (error) {
        this.store.transaction(() => this.events.append(volumeImportEnd(subject, volume, false, 0)));
        throw error;
      }
      progress(sizeBytes, sizeBytes);
      this.store.transaction(() => this.events.append(volumeImportEnd(subject, volume, true, sizeBytes)));
      return this.view(volume);
    });
  }

  /**
   * Runs a change of one ready volume, alone: the volume and its pool's driver are looked up
   * once its turn comes. With `halted`, a VM's volume changes only while the VM is halted, and
   * the VM is held meanwhile (no start can come between): FAILED_PRECONDITION (VM_NOT_HALTED).
   */
  private change<T>(key: VolumeKey, ctx: CallContext, what: string, needs: { halted?: string; unexported?: boolean }, work: (volume: VolumeRecord, driver: StorageDriver) => Promise<T>): Promise<T> {
    const volume = this.record(key);
    this.refuseTaken(key);
    const run = () =>
      this.queue.run(`${key.pool}/${key.vid}`, { caller: ctx, what: `${what} volume ${key.vid}` }, async () => {
        const current = this.record(key);
        // What changes the content, the size or the image under an export is refused while it serves the volume.
        if (needs.halted !== undefined || needs.unexported) refuseExported(this.store, current);
        await this.makeIfAbsent(current);
        return work(current, this.pools.driver(key.pool));
      });
    const toBe = needs.halted;
    if (toBe !== undefined) this.requireUnattachedToRunning(volume, toBe);
    if (toBe === undefined || volume.vmQid === undefined) return run();
    const vm = this.store.vms.byQid(volume.vmQid);
    if (!vm) return run();
    return this.vmOperations.on(`uuid:${vm.uuid}`, "volume.vm", ctx, `${what} a volume`, (held) => {
      this.powerStates.requireHalted(held, `${toBe} (its volume ${volume.name})`);
      return run();
    });
  }

  /**
   * Refuses a change a VM's disk must not see under it while another VM runs with the volume
   * attached: FAILED_PRECONDITION (VOLUME_IN_USE). (Those VMs are not held: a start meanwhile
   * is the hot-plug issue's to order.)
   */
  private requireUnattachedToRunning(volume: VolumeRecord, toBe: string): void {
    const running = this.store.attachments
      .ofVolume(volume.pool, volume.vid)
      .map((attachment) => this.store.vms.byQid(attachment.vmQid))
      .filter((vm): vm is NonNullable<typeof vm> => vm !== undefined && this.powerStates.of(vm) !== "Halted");
    if (running.length > 0) throw volumeInUse(volume.vid, `it cannot be ${toBe} while ${running.map((vm) => vm.name).join(", ")} runs with it attached`, running.map((vm) => vm.name));
  }

  /** Saves the volume's current content as a revision, with its event, then prunes past revisions_to_keep, sparing `spare`. */
  private async keepRevision(volume: VolumeRecord, driver: StorageDriver, spare: readonly string[] = []): Promise<Revision> {
    // A driver that clones cheaply snapshots so too; the others copy the allocated bytes.
    const needed = canCloneCheaply(driver) ? 0 : (await driver.volumeUsage(volume.vid)).allocatedBytes;
    const revision = await this.pools.withRoom(volume.pool, needed, () => driver.snapshot(volume.vid));
    this.store.transaction(() => this.events.append(volumeSnapshot(this.subjectOf(volume), volume, revision.id)));
    this.pruneNext(volume, driver, [revision.id, ...spare]);
    return revision;
  }

  /**
   * Drops the revisions past revisions_to_keep in the volume's next turn, right after the change
   * that made one: a driver may merge images to drop one (qcow2), which takes a qemu-img run and
   * grows with the revision's data, and the change need not wait for it. Whatever comes next for
   * the volume (a change, a listing of its revisions) comes after it. A failure is logged, and
   * the next prune tries again.
   */
  private pruneNext(volume: VolumeRecord, driver: StorageDriver, spare: readonly string[]): void {
    const name = `${volume.pool}/${volume.vid}`;
    const pruned = this.queue
      .run(name, { what: `drop old revisions of volume ${volume.vid}`, next: true }, () => this.prune(volume, driver, spare))
      .catch((error: unknown) => this.log.warn({ pool: volume.pool, vid: volume.vid, err: error }, "could not drop a volume's old revisions"))
      .finally(() => {
        if (this.pruning.get(name) === pruned) this.pruning.delete(name);
      });
    this.pruning.set(name, pruned);
  }

  /**
   * What the volume takes, and whether its file is made: a VM's volume that a start makes anew
   * (isMadeAtStart) and that none made yet has the size it will have (its source's, or its own
   * default) and takes nothing.
   */
  async usage(volume: VolumeRecord): Promise<VolumeUsage & { made: boolean }> {
    try {
      return { ...(await this.pools.driver(volume.pool).volumeUsage(volume.vid)), made: true };
    } catch (error) {
      if (!isMadeAtStart(volume) || !isVolumeNotFound(error)) throw error;
      return { sizeBytes: await this.sizeToBe(volume), allocatedBytes: 0, stamp: "", made: false };
    }
  }

  /**
   * Makes, empty and of the size it is to have, a VM's volume that a start makes anew and that
   * none made yet, before anything needs its file; true when this made it (not when it was made,
   * or something else made it meanwhile).
   */
  async makeIfAbsent(volume: VolumeRecord): Promise<boolean> {
    if (!isMadeAtStart(volume)) return false;
    const usage = await this.usage(volume);
    if (usage.made) return false;
    try {
      await this.pools.driver(volume.pool).create(volume.vid, usage.sizeBytes);
      return true;
    } catch (error) {
      if (isVolumeExists(error)) return false;
      throw error;
    }
  }

  /** The size a volume made at start has before it is made: its source's, else the default of its name. */
  private async sizeToBe(volume: VolumeRecord): Promise<number> {
    if (volume.snapOnStart && volume.source !== "") {
      const { pool, vid } = parseVolumeSource(volume.source);
      const source = this.store.volumes.get(pool, vid);
      if (source !== undefined) return (await this.usage(source)).sizeBytes;
    }
    return NEW_VOLUME_BYTES[volume.name] ?? 0;
  }

  /**
   * Once the drop of the volume's old revisions that its last snapshot queued is done: what reads
   * its images (an export, a copy, a VM's start) waits for it, so that a merge (qemu-img commit,
   * which holds its images' write lock) and a reader never meet.
   */
  async settled(key: VolumeKey): Promise<void> {
    await this.pruning.get(`${key.pool}/${key.vid}`);
  }

  /** Drops the oldest revisions past revisions_to_keep; those in `spare` (just made, or about to be reverted to) stay. */
  private async prune(volume: VolumeRecord, driver: StorageDriver, spare: readonly string[] = []): Promise<void> {
    const revisions = await driver.revisions(volume.vid);
    let excess = revisions.length - Math.max(this.revisionsToKeep(volume), spare.length);
    for (const revision of revisions) {
      if (excess <= 0) break;
      if (spare.includes(revision.id)) continue;
      await driver.deleteRevision(volume.vid, revision.id);
      excess--;
    }
  }

  private setting(volume: VolumeRecord, changes: Partial<VolumeRecord>, property: string, oldValue: string, newValue: string): VolumeRecord {
    if (oldValue === newValue) return volume;
    const changed = { ...volume, ...changes };
    this.store.transaction(() => {
      this.store.volumes.update(changed);
      this.events.append(volumeSet(this.subjectOf(volume), volume, property, newValue, oldValue));
    });
    return changed;
  }

  private revisionsToKeep(volume: VolumeRecord): number {
    return volume.revisionsToKeep ?? this.store.pools.get(volume.pool)?.revisionsToKeep ?? 1;
  }

  private record({ pool, vid }: VolumeKey): VolumeRecord {
    this.pools.driver(pool);
    const volume = this.store.volumes.get(pool, vid);
    if (!volume || volume.state !== "ready") throw volumeNotFound(vid);
    return volume;
  }

  private vmName(volume: VolumeRecord): string {
    return volume.vmQid === undefined ? "" : (this.store.vms.byQid(volume.vmQid)?.name ?? "");
  }

  /** The VM owning the volume, for an operation's target; undefined for a pool's own volume. */
  ownerOf(key: VolumeKey): EventSubject | undefined {
    const subject = this.subjectOf(this.record(key));
    return subject === HOST_SUBJECT ? undefined : subject;
  }

  private subjectOf(volume: VolumeRecord): EventSubject {
    if (volume.vmQid === undefined) return HOST_SUBJECT;
    const vm = this.store.vms.byQid(volume.vmQid);
    return vm ? { name: vm.name, uuid: vm.uuid } : HOST_SUBJECT;
  }

  private async view(volume: VolumeRecord): Promise<VolumeView> {
    const driver = this.pools.driver(volume.pool);
    const usage = await this.usage(volume);
    return {
      ...volume,
      sizeBytes: usage.sizeBytes,
      usageBytes: usage.allocatedBytes,
      effectiveRevisionsToKeep: this.revisionsToKeep(volume),
      hostPath: driver.hostPath(volume.vid),
      vmName: this.vmName(volume),
      attachments: this.store.attachments.ofVolume(volume.pool, volume.vid).map(({ vmQid, name, rw, order }) => ({ vm: this.store.vms.byQid(vmQid)?.name ?? "", name, rw, order })),
      isOutdated: await this.outdated(volume),
    };
  }

  /** Whether a snap_on_start volume's VM runs on a snapshot of a content its source no longer has. */
  private async outdated(volume: VolumeRecord): Promise<boolean> {
    if (!volume.snapOnStart || volume.source === "" || volume.sourceStamp === "" || volume.vmQid === undefined) return false;
    const vm = this.store.vms.byQid(volume.vmQid);
    if (vm === undefined || this.powerStates.of(vm) === "Halted") return false;
    const source = parseVolumeSource(volume.source);
    try {
      return (await this.pools.driver(source.pool).volumeUsage(source.vid)).stamp !== volume.sourceStamp;
    } catch {
      return true; // The source is gone: what the VM runs on is no longer there to be had.
    }
  }
}

function checkVid(vid: string, field: string): void {
  if (!isValidVid(vid)) throw invalidVidField(field, vid);
}

/** QEMU's default for a dirty bitmap: a bit for 64 KiB. */
const DEFAULT_BITMAP_GRANULARITY = 64 * 1024;
/** What qcow2 keeps: from 512 bytes to 2 GiB a bit. */
const MIN_BITMAP_GRANULARITY = 512;
const MAX_BITMAP_GRANULARITY = 2 ** 31;
const BITMAP_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

/** What ChangeBitmap does. */
export type BitmapChange =
  | { kind: "add"; name: string; granularityBytes: number }
  | { kind: "clear"; name: string }
  | { kind: "remove"; name: string; allowMissing: boolean };

function checkBitmapName(name: string, field: string): void {
  if (!BITMAP_NAME.test(name)) throw new InvalidFieldError(field, "must be a letter, then letters, digits, '_', '.' or '-', at most 64 characters");
}

function checkGranularity(granularity: number, field: string): void {
  if (granularity === 0) return;
  if (granularity < MIN_BITMAP_GRANULARITY || granularity > MAX_BITMAP_GRANULARITY || (granularity & (granularity - 1)) !== 0) {
    throw new InvalidFieldError(field, `${granularity} is not a power of two from ${MIN_BITMAP_GRANULARITY} to ${MAX_BITMAP_GRANULARITY}`);
  }
}

function checkRevision(revision: string, field: string): void {
  if (!isValidRevisionId(revision)) throw new InvalidFieldError(field, `${JSON.stringify(revision)} is not a revision id: letters, digits, "_", "." or "-"`);
}

function checkSize(vid: string, sizeBytes: number, field: string): void {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0) throw invalidVolumeSize(vid, sizeBytes);
  if (sizeBytes % SECTOR !== 0) throw new InvalidFieldError(field, `${sizeBytes} is not a multiple of ${SECTOR} bytes`, invalidVolumeSize(vid, sizeBytes).reason);
}

function pyBool(value: boolean): string {
  return value ? "True" : "False";
}

/** Refuses a change of a volume that a block export serves (VOLUME_IN_USE). */
export function refuseExported(store: Store, volume: VolumeKey): void {
  const exports = store.blockExports.ofVolume(volume.pool, volume.vid);
  if (exports.length > 0) throw volumeExported(volume.vid, exports.map((record) => record.id));
}
