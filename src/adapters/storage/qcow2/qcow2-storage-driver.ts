import { randomUUID } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import { systemClock, type Clock } from "../../../ports/clock";
import { isValidVid, type CheapClone, type EphemeralEncryption, type EphemeralImage, type ImageTransfer, type PoolUsage, type Revision, type StorageDriver, type VolumeBitmap, type VolumeBitmaps, type VolumeReader, type VolumeUsage, type VolumeWriter } from "../../../ports/storage-driver";
import { bitmapExists, bitmapNotFound, invalidVid, invalidVolumeSize, noRoomOnDisk, volumeTooLarge, shrinkRefused, unsafeVolumePath, volumeNotFound } from "../../../ports/storage-errors";
import { within } from "../shared/locations";
import { fileStamp, isNoSpace, tooLargeFor, lstatOrUndefined, PoolFolder, removeFile } from "../shared/pool-folder";
import { imageBitmaps, QEMU_IMG, type ImageFormat } from "../shared/qemu-img";
import { makeEncryptedImage } from "../shared/ephemeral-images";
import { openImageReader, openImageWriter } from "../shared/image-transfer";
import { RawFileReader, RawFileWriter } from "../shared/raw-file-io";
import { writeEmptyQcow2, writeQcow2Overlay } from "../shared/qcow2-overlay";
import { runTool, ToolError } from "../shared/run-tool";
import { Serial } from "../shared/serial";
import { VolumeFiles } from "../shared/volume-files";
import { readQcow2Header, type Qcow2Header } from "../shared/qcow2-header";

/** A volume's current image: the one a VM would write. It is never another image's backing file. */
const VOLUME_SUFFIX = ".qcow2";
/**
 * An immutable image that clones share as their backing file, beside the volume it was frozen
 * from, so that the backing names inside it (relative to its folder) still hold.
 */
const BASE = /^.+\.qcow2\.base-[0-9a-f-]{36}~$/;
/** Beside an image being merged into its only child (dropImage): the child's name, until the merge is done. */
const MERGE_SUFFIX = ".merge~";
/** Deeper than any chain this driver makes; a deeper one is someone else's. */
const MAX_CHAIN = 4096;

/** The volume image a revision (`<name>.qcow2.<id>~`) or base (`<name>.qcow2.base-<uuid>~`) was frozen from; undefined for other names. */
function frozenFromOf(name: string): string | undefined {
  return /^(?<volume>.+\.qcow2)\.(?:[0-9]+|base-[0-9a-f-]{36})~$/.exec(name)?.groups?.volume;
}

function isByteCount(sizeBytes: number): boolean {
  return Number.isSafeInteger(sizeBytes) && sizeBytes >= 0;
}

function qemuImg(args: string[]): Promise<unknown> {
  return runTool(QEMU_IMG, args);
}

/**
 * A pool of qcow2 images in a folder, made and changed with qemu-img. A snapshot renames nothing
 * and copies nothing: the volume's image becomes the revision (a hard link, then a new overlay
 * renamed into the volume's place), so it costs an overlay's header however large the volume.
 * A clone (a snapshot taken at a start) freezes the source's image the same way into a base,
 * unless it is frozen already, and makes the target an overlay of it. Dropping a revision that
 * other images are backed by keeps their content: it is merged into the one revision after it,
 * or its children are rebased onto its own backing file (dropImage). Bases nothing is backed by
 * any more are removed.
 *
 * Reads and writes go through raw files in the pool's temporary folder: a reader reads a raw
 * conversion of the chain; a writer's raw file is converted to a standalone image at finish().
 */
export class Qcow2StorageDriver implements StorageDriver, CheapClone, ImageTransfer, EphemeralEncryption, VolumeBitmaps {
  /** Volumes' images, and revisions' (`<vid>.qcow2.<id>~`): immutable, and backing files of what came after them. */
  private readonly files: VolumeFiles;
  /**
   * Changes of the pool's images, one at a time: a freeze links an image before anything names
   * it, and collecting the bases no image names must not run in between; a rebase must not
   * run under another change of the same chain.
   */
  private readonly changes = new Serial();

  private constructor(
    private readonly pool: PoolFolder,
    private readonly clock: Clock,
  ) {
    this.files = new VolumeFiles(pool, VOLUME_SUFFIX);
  }

  /** Opens the pool, and sweeps what a process that died midway left: temporaries, half-made links, bases nothing uses. */
  static async open(folder: string, clock: Clock = systemClock): Promise<Qcow2StorageDriver> {
    const driver = new Qcow2StorageDriver(await PoolFolder.open(folder), clock);
    await driver.sweep();
    return driver;
  }

  readonly format = "qcow2";

  hostPath(vid: string): string {
    return path.join(this.pool.root, vid + VOLUME_SUFFIX);
  }

  create(vid: string, sizeBytes: number): Promise<void> {
    return this.changes.run(async () => {
      if (!isValidVid(vid)) throw invalidVid(vid);
      if (!isByteCount(sizeBytes)) throw invalidVolumeSize(vid, sizeBytes);
      const { file, inNewFolder } = await this.files.fresh(vid);
      const make = async (target: string) => {
        try {
          await writeEmptyQcow2(target, sizeBytes);
        } catch (error) {
          throw this.translated(vid, error);
        }
      };
      if (inNewFolder) return this.files.createInNewFolder(vid, file, make);
      await this.removeRevisions(file);
      await this.files.createFrom(vid, file, make);
    });
  }

  delete(vid: string): Promise<boolean> {
    return this.changes.run(async () => {
      const file = await this.files.ifExists(vid);
      if (file === undefined) {
        // A delete a crash cut short moved the image away first: its revisions go now.
        await this.removeRevisions(await this.pool.fileOf(vid, VOLUME_SUFFIX));
        await this.collectBases();
        return false;
      }
      await this.files.deleteWith(file, () => this.removeRevisions(file));
      await this.collectBases();
      return true;
    });
  }

  async list(): Promise<string[]> {
    return this.files.list();
  }

  resize(vid: string, sizeBytes: number): Promise<void> {
    return this.changes.run(async () => {
      const file = await this.volumeFile(vid);
      if (!isByteCount(sizeBytes)) throw invalidVolumeSize(vid, sizeBytes);
      const { sizeBytes: size } = await readQcow2Header(file);
      if (sizeBytes < size) throw shrinkRefused(vid, size, sizeBytes);
      if (sizeBytes > size) await this.tool(vid, ["resize", "-q", "-f", "qcow2", file, String(sizeBytes)]);
    });
  }

  snapshot(vid: string): Promise<Revision> {
    return this.changes.run(async () => {
      const file = await this.volumeFile(vid);
      const header = await this.checkedChain(vid, file);
      const id = await this.files.nextRevisionId(file, this.clock.now());
      await this.freeze(vid, file, this.files.revisionFile(file, id), header);
      return { id, createdAt: new Date(Number(id)), sizeBytes: header.sizeBytes };
    });
  }

  revert(vid: string, revision: string): Promise<void> {
    return this.changes.run(async () => {
      const file = await this.volumeFile(vid);
      const saved = await this.files.revisionPath(vid, file, revision);
      const header = await this.checkedChain(vid, saved);
      await this.replaceWithOverlay(vid, file, saved, header.sizeBytes);
      await this.collectBases();
    });
  }

  async bitmaps(vid: string): Promise<VolumeBitmap[]> {
    return imageBitmaps(await this.volumeFile(vid));
  }

  addBitmap(vid: string, name: string, granularityBytes: number): Promise<void> {
    return this.changes.run(async () => {
      const file = await this.volumeFile(vid);
      if ((await imageBitmaps(file)).some((bitmap) => bitmap.name === name)) throw bitmapExists(vid, name);
      await this.tool(vid, ["bitmap", "--add", "-g", String(granularityBytes), "-f", "qcow2", file, name]);
    });
  }

  clearBitmap(vid: string, name: string): Promise<void> {
    return this.changes.run(async () => {
      const file = await this.volumeFile(vid);
      if (!(await imageBitmaps(file)).some((bitmap) => bitmap.name === name)) throw bitmapNotFound(vid, name);
      await this.tool(vid, ["bitmap", "--clear", "-f", "qcow2", file, name]);
    });
  }

  removeBitmap(vid: string, name: string): Promise<boolean> {
    return this.changes.run(async () => {
      const file = await this.volumeFile(vid);
      if (!(await imageBitmaps(file)).some((bitmap) => bitmap.name === name)) return false;
      await this.tool(vid, ["bitmap", "--remove", "-f", "qcow2", file, name]);
      return true;
    });
  }

  async revisions(vid: string): Promise<Revision[]> {
    return this.revisionsOf(vid, await this.volumeFile(vid));
  }

  deleteRevision(vid: string, revision: string): Promise<boolean> {
    return this.changes.run(async () => {
      const saved = await this.files.savedRevision(vid, await this.volumeFile(vid), revision);
      if (saved === undefined) return false;
      await this.dropImage(vid, saved);
      await this.collectBases();
      return true;
    });
  }

  async openRead(vid: string, revision?: string): Promise<VolumeReader> {
    const file = await this.volumeFile(vid);
    const image = revision === undefined ? file : await this.files.revisionPath(vid, file, revision);
    await this.checkedChain(vid, image);
    const raw = this.pool.temporary(".img");
    try {
      // Into a hole of the right size that qemu-img does not make (it would allocate the first
      // block), writing only what is not zero.
      await fs.writeFile(raw, new Uint8Array(0), { flag: "wx", mode: 0o600 });
      await fs.truncate(raw, (await readQcow2Header(image)).sizeBytes);
      await qemuImg(["convert", "-q", "-n", "--target-is-zero", "-f", "qcow2", "-O", "raw", image, raw]);
      // The reader keeps the file open: it needs no name, and leaves none behind.
      return await RawFileReader.open(vid, raw);
    } catch (error) {
      throw this.translated(vid, error);
    } finally {
      await removeFile(raw);
    }
  }

  async openWrite(vid: string, sizeBytes?: number): Promise<VolumeWriter> {
    const file = await this.volumeFile(vid);
    const size = sizeBytes ?? (await readQcow2Header(file)).sizeBytes;
    if (!isByteCount(size)) throw invalidVolumeSize(vid, size);
    return RawFileWriter.open(vid, this.pool, size, (raw, written) => this.changes.run(() => (written ? this.replaceWithConversion(vid, file, raw) : this.replaceWithEmpty(vid, file, size))));
  }

  /** A standalone qcow2 image of the volume's size, LUKS-encrypted, in its place. */
  makeEphemeral(vid: string): Promise<EphemeralImage> {
    return this.changes.run(async () => {
      const file = await this.volumeFile(vid);
      const { sizeBytes } = await readQcow2Header(file);
      const image = this.pool.temporary(VOLUME_SUFFIX);
      try {
        const made = await makeEncryptedImage(this.pool, image, "qcow2", sizeBytes);
        if (!(await this.pool.regularFile(vid, file))) throw volumeNotFound(vid);
        await fs.rename(image, file);
        await this.collectBases();
        return made;
      } catch (error) {
        throw this.translated(vid, error);
      } finally {
        await removeFile(image);
      }
    });
  }

  async openImageRead(vid: string, _format: "qcow2", revision?: string): Promise<VolumeReader> {
    const file = await this.volumeFile(vid);
    const image = revision === undefined ? file : await this.files.revisionPath(vid, file, revision);
    await this.checkedChain(vid, image);
    try {
      return await openImageReader(vid, this.pool, image, "qcow2");
    } catch (error) {
      throw this.translated(vid, error);
    }
  }

  async openImageWrite(vid: string, _format: "qcow2", imageBytes: number, accept: (sizeBytes: number) => void | Promise<void>): Promise<VolumeWriter> {
    const file = await this.volumeFile(vid);
    if (!isByteCount(imageBytes)) throw invalidVolumeSize(vid, imageBytes);
    return openImageWriter(vid, this.pool, imageBytes, accept, (image) => this.changes.run(() => this.replaceWithConversion(vid, file, image, "qcow2")));
  }

  /** Converts a writer's file (raw, or a checked image) to a standalone image of the pool's own, renamed into the volume's place. */
  private async replaceWithConversion(vid: string, file: string, written: string, format: ImageFormat = "raw"): Promise<void> {
    await this.replaceWith(vid, file, (image) => qemuImg(["convert", "-q", "-f", format, "-O", "qcow2", written, image]));
  }

  /** Puts an empty image of `sizeBytes` in the place of `vid`'s file: a content never written is all zeroes, and takes no conversion. */
  private replaceWithEmpty(vid: string, file: string, sizeBytes: number): Promise<void> {
    return this.replaceWith(vid, file, (image) => writeEmptyQcow2(image, sizeBytes));
  }

  /** Puts the image that `make` writes at a temporary in the place of `vid`'s file, if it is still there. */
  private async replaceWith(vid: string, file: string, make: (image: string) => Promise<unknown>): Promise<void> {
    const image = this.pool.temporary(VOLUME_SUFFIX);
    try {
      await make(image);
      if (!(await this.pool.regularFile(vid, file))) throw volumeNotFound(vid);
      await fs.rename(image, file);
      await this.collectBases();
    } catch (error) {
      throw this.translated(vid, error);
    } finally {
      await removeFile(image);
    }
  }

  async volumeUsage(vid: string): Promise<VolumeUsage> {
    const file = await this.volumeFile(vid);
    const [{ sizeBytes }, stats] = await Promise.all([readQcow2Header(file), fs.stat(file)]);
    return { sizeBytes, allocatedBytes: stats.blocks * 512, stamp: fileStamp(stats) };
  }

  async poolUsage(): Promise<PoolUsage> {
    let usedBytes = 0;
    for (const file of await this.pool.files()) usedBytes += ((await lstatOrUndefined(path.join(this.pool.root, file)))?.blocks ?? 0) * 512;
    const { bsize, blocks, bavail } = await fs.statfs(this.pool.root);
    return { usedBytes, capacityBytes: bsize * blocks, freeBytes: bsize * bavail };
  }

  clone(sourceVid: string, targetVid: string): Promise<void> {
    return this.changes.run(async () => {
      const source = await this.volumeFile(sourceVid);
      const header = await this.checkedChain(sourceVid, source);
      const target = await this.files.place(targetVid);
      // A source that holds nothing of its own since it was last frozen is that frozen image.
      const backing = header.backing === undefined ? undefined : path.resolve(path.dirname(source), header.backing);
      let base = header.empty && backing !== undefined && this.isBase(backing) ? backing : undefined;
      if (base === undefined) {
        base = `${source}.base-${randomUUID()}~`;
        await this.freeze(sourceVid, source, base, header);
      }
      await this.replaceWithOverlay(targetVid, target, base, header.sizeBytes);
      await this.collectBases();
    });
  }

  /**
   * Makes the image `top` (a volume's) the immutable `frozen`, and `top` a new empty overlay of
   * it. The link comes first: a crash after it leaves `frozen` sharing the volume's file, which
   * the sweep at the next start undoes (a frozen image has one name).
   */
  private async freeze(vid: string, top: string, frozen: string, header: Qcow2Header): Promise<void> {
    const overlay = this.pool.temporary(VOLUME_SUFFIX);
    // Read off the header first: most images have none, and qemu-img costs a process.
    const bitmaps = header.bitmaps ? await imageBitmaps(top) : [];
    try {
      await this.makeOverlay(overlay, top, frozen, header.sizeBytes);
      await fs.link(top, frozen);
      await fs.rename(overlay, top);
    } catch (error) {
      throw this.translated(vid, error);
    } finally {
      await removeFile(overlay);
    }
    await this.carryBitmaps(vid, top, frozen, bitmaps);
  }

  /**
   * Gives the volume's new image the bitmaps of the one it froze, with what they recorded, so
   * that they go on telling what changed since they were made (a crash before leaves them in the
   * revision only).
   */
  private async carryBitmaps(vid: string, top: string, frozen: string, bitmaps: readonly VolumeBitmap[]): Promise<void> {
    // An inconsistent one tells nothing, and QEMU would refuse to merge it.
    for (const bitmap of bitmaps.filter((each) => !each.inconsistent)) {
      const disable = bitmap.recording ? [] : ["--disable"];
      await this.tool(vid, ["bitmap", "--add", "-g", String(bitmap.granularityBytes), "--merge", bitmap.name, "-b", frozen, "-F", "qcow2", ...disable, "-f", "qcow2", top, bitmap.name]);
    }
  }

  /** Puts a new empty overlay of `backing` in the place of `file`. */
  private async replaceWithOverlay(vid: string, file: string, backing: string, sizeBytes: number): Promise<void> {
    const overlay = this.pool.temporary(VOLUME_SUFFIX);
    try {
      await this.makeOverlay(overlay, file, backing, sizeBytes);
      await fs.rename(overlay, file);
    } catch (error) {
      throw this.translated(vid, error);
    } finally {
      await removeFile(overlay);
    }
  }

  /**
   * Makes at `overlay` an empty image backed by `backing`, naming it relative to `home`, where
   * the overlay will be renamed to, so that the pool's folder can move. Written as qemu-img
   * writes it (qcow2-overlay.ts), without its process: the backing file need not be opened, since
   * the size is known.
   */
  private async makeOverlay(overlay: string, home: string, backing: string, sizeBytes: number): Promise<void> {
    await writeQcow2Overlay(overlay, path.relative(path.dirname(home), backing), sizeBytes);
  }

  /**
   * The header of `file`, once its backing chain is checked to stay among the pool's own
   * images: revisions and bases, regular files inside the folder. INVALID_ARGUMENT
   * (VOLUME_PATH_UNSAFE) for an image someone else made that points elsewhere.
   */
  private async checkedChain(vid: string, file: string): Promise<Qcow2Header> {
    return (await this.chainOf(vid, file)).header;
  }

  /**
   * The images under a volume's current one, nearest first, each checked as checkedChain
   * checks them: what a hypervisor that opens no backing file by the name inside an image
   * (QEMU, given descriptors) must open itself.
   */
  async backingChain(vid: string): Promise<string[]> {
    return (await this.chainOf(vid, this.hostPath(vid))).chain;
  }

  /** The header of `file`, and the checked images under it, nearest first. */
  private async chainOf(vid: string, file: string): Promise<{ header: Qcow2Header; chain: string[] }> {
    const first = await readQcow2Header(file);
    const chain: string[] = [];
    let header = first;
    let current = file;
    for (let depth = 0; header.backing !== undefined; depth++) {
      const backing = path.resolve(path.dirname(current), header.backing);
      const ours = depth < MAX_CHAIN && within(backing, this.pool.root) && (this.isBase(backing) || this.files.isRevision(path.basename(backing)));
      const stats = ours ? await lstatOrUndefined(backing) : undefined;
      // The folders on the way are real folders too, not symlinks someone planted to lead out.
      const real = stats?.isFile() ? await fs.realpath(backing).catch(() => undefined) : undefined;
      if (!stats?.isFile() || real !== backing) throw unsafeVolumePath(vid, `its image is backed by ${JSON.stringify(header.backing)}, which is not an image of the pool's own`);
      current = backing;
      chain.push(backing);
      header = await readQcow2Header(current);
    }
    return { header: first, chain };
  }

  private isBase(file: string): boolean {
    return BASE.test(path.basename(file));
  }

  /**
   * Removes the immutable image `image` (a revision), keeping the content of what it backs, as
   * cheaply as its shape allows: one with no data of its own is stepped over (its children's
   * headers name its backing file instead: an unsafe rebase, which reads nothing); one that
   * backs a single image of no smaller size beside it takes that image's data (qemu-img commit,
   * which costs the child's clusters: a fresh revision's few) and then its place; any other has
   * its children rebased, which copies what they need of it.
   */
  private async dropImage(vid: string, image: string): Promise<void> {
    const header = await readQcow2Header(image);
    const children = (await this.images()).filter(([file, child]) => child.backing !== undefined && path.resolve(path.dirname(file), child.backing) === image);
    const only = children.length === 1 ? children[0] : undefined;
    // Only into an immutable child: a volume's current image may be a running VM's.
    const immutable = only !== undefined && !only[0].endsWith(VOLUME_SUFFIX);
    if (!header.empty && only !== undefined && immutable && path.dirname(only[0]) === path.dirname(image) && only[1].sizeBytes >= header.sizeBytes) {
      await this.mergeInto(vid, image, only[0]);
      return;
    }
    await this.detachChildren(vid, image, header.empty);
    await fs.rm(image);
  }

  /**
   * Commits `child`'s data into `image`, its backing file, then renames `image` into `child`'s
   * place. A marker beside `image` says so first: a crash midway leaves `image` half merged
   * (it is being dropped: nothing reads it), and the next start finishes the merge (sweep).
   */
  private async mergeInto(vid: string, image: string, child: string): Promise<void> {
    const marker = image + MERGE_SUFFIX;
    const handle = await fs.open(marker, "wx", 0o600);
    try {
      await handle.writeFile(path.basename(child));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await this.finishMerge(vid, marker);
  }

  /** The merge a marker tells of, done (again) from the start, then the marker removed. */
  private async finishMerge(vid: string, marker: string): Promise<void> {
    const image = marker.slice(0, -MERGE_SUFFIX.length);
    const child = path.join(path.dirname(marker), await fs.readFile(marker, "utf8"));
    if ((await lstatOrUndefined(image))?.isFile()) {
      await this.tool(vid, ["commit", "-q", "-f", "qcow2", "-d", child]);
      await fs.rename(image, child);
    }
    await removeFile(marker);
  }

  /** Rebases every image backed by `image` onto `image`'s own backing file, so that `image` can go; `unsafe` when `image` holds no data, so that no cluster is read. */
  private async detachChildren(vid: string, image: string, unsafe = false): Promise<void> {
    const { backing } = await readQcow2Header(image);
    const parent = backing === undefined ? undefined : path.resolve(path.dirname(image), backing);
    for (const [child, header] of await this.images()) {
      if (header.backing === undefined || path.resolve(path.dirname(child), header.backing) !== image) continue;
      const args = parent === undefined ? ["-b", ""] : ["-b", path.relative(path.dirname(child), parent), "-F", "qcow2"];
      await this.tool(vid, ["rebase", "-q", ...(unsafe ? ["-u"] : []), "-f", "qcow2", ...args, child]);
    }
  }

  /** Every image of the pool (volumes, revisions, bases) with its header; files that are no qcow2 image are left out. */
  private async images(): Promise<[string, Qcow2Header][]> {
    const images: [string, Qcow2Header][] = [];
    for (const relative of await this.pool.files()) {
      const name = path.basename(relative);
      if (!name.endsWith(VOLUME_SUFFIX) && !this.files.isRevision(name) && !BASE.test(name)) continue;
      const file = path.join(this.pool.root, relative);
      try {
        images.push([file, await readQcow2Header(file)]);
      } catch {
        // Not an image of ours: the pool leaves it alone.
      }
    }
    return images;
  }

  /** Removes the bases no image is backed by any more, until none is left. */
  private async collectBases(): Promise<void> {
    for (;;) {
      const images = await this.images();
      const used = new Set(images.flatMap(([file, header]) => (header.backing === undefined ? [] : [path.resolve(path.dirname(file), header.backing)])));
      const unused = images.map(([file]) => file).filter((file) => this.isBase(file) && !used.has(file));
      if (unused.length === 0) return;
      for (const file of unused) await removeFile(file);
    }
  }

  /**
   * Undoes a freeze that a crash cut short: a revision or base that is still the very file of
   * the volume it was frozen from (linked, and the new overlay never renamed into place). Other
   * files with several links (a backup made with hard links) are left alone. Then collects bases.
   */
  private async sweep(): Promise<void> {
    for (const relative of await this.pool.files()) {
      if (relative.endsWith(MERGE_SUFFIX)) await this.finishMerge(relative, path.join(this.pool.root, relative));
    }
    for (const [file] of await this.images()) {
      const frozenFrom = frozenFromOf(path.basename(file));
      if (frozenFrom === undefined) continue;
      const [frozen, volume] = await Promise.all([lstatOrUndefined(file), lstatOrUndefined(path.join(path.dirname(file), frozenFrom))]);
      if (frozen !== undefined && volume !== undefined && frozen.ino === volume.ino && frozen.dev === volume.dev) await removeFile(file);
    }
    await this.collectBases();
  }

  private volumeFile(vid: string): Promise<string> {
    return this.files.existing(vid);
  }

  private async revisionsOf(vid: string, file: string): Promise<Revision[]> {
    const revisions: Revision[] = [];
    for (const id of await this.files.revisionIds(file)) {
      const saved = this.files.revisionFile(file, id);
      if (await this.pool.regularFile(vid, saved)) revisions.push({ id, createdAt: new Date(Number(id)), sizeBytes: (await readQcow2Header(saved)).sizeBytes });
    }
    return revisions;
  }

  /** Removes a volume's revisions, rebasing first what else is backed by them (clones made from them). */
  private async removeRevisions(file: string): Promise<void> {
    const vid = this.pool.relative(file).slice(0, -VOLUME_SUFFIX.length);
    // Newest first: each one's children are then only images outside this volume.
    for (const id of (await this.files.revisionIds(file)).reverse()) {
      const saved = this.files.revisionFile(file, id);
      await this.detachChildren(vid, saved);
      await removeFile(saved);
    }
  }

  /** Runs qemu-img on `vid`'s images; a full filesystem is RESOURCE_EXHAUSTED. */
  private async tool(vid: string, args: string[]): Promise<void> {
    try {
      await qemuImg(args);
    } catch (error) {
      throw this.translated(vid, error);
    }
  }

  private translated(vid: string, error: unknown): unknown {
    if (isNoSpace(error) || (error instanceof ToolError && error.noSpace)) return noRoomOnDisk(vid, this.pool.root);
    const tooLarge = tooLargeFor(error);
    if (tooLarge !== undefined) return volumeTooLarge(vid, tooLarge);
    return error;
  }
}
