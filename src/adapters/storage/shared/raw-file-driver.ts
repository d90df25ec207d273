import { constants, promises as fs } from "node:fs";
import path from "node:path";
import type { Clock } from "../../../ports/clock";
import { isValidVid, type EphemeralEncryption, type EphemeralImage, type ImageTransfer, type PoolUsage, type Revision, type StorageDriver, type VolumeReader, type VolumeUsage, type VolumeWriter } from "../../../ports/storage-driver";
import { invalidVid, invalidVolumeSize, noRoomOnDisk, volumeTooLarge, shrinkRefused, volumeNotFound } from "../../../ports/storage-errors";
import { fileStamp, isNoSpace, tooLargeFor, removeFile, type PoolFolder } from "./pool-folder";
import { RawFileReader, RawFileWriter } from "./raw-file-io";
import { luksHeaderBytes, makeEncryptedImage } from "./ephemeral-images";
import { openImageReader, openImageWriter } from "./image-transfer";
import { QEMU_IMG } from "./qemu-img";
import { runTool, ToolError } from "./run-tool";
import { VolumeFiles } from "./volume-files";

/** How a driver of raw files copies one and counts what its files take. */
export interface RawFileCopies {
  /** Makes the new file `target` a copy of `source`, holes kept as holes. */
  copy(source: string, target: string): Promise<void>;
  /** Bytes the files take on disk together, blocks they share counted once. */
  usedBytes(files: readonly string[]): Promise<number>;
}

/** A volume's current content; its revisions are `<vid>.img.<id>~`, as Qubes' file-reflink names them. */
const VOLUME_SUFFIX = ".img";
/**
 * Beside a volume whose content is an ephemeral LUKS image this driver made (`<vid>.img.luks~`):
 * only then is a LUKS header at the start of the file taken for the driver's own, and its size
 * left out. A guest's own LUKS disk has none, and is bytes like any other.
 */
const EPHEMERAL_MARK = ".luks~";

function isByteCount(sizeBytes: number): boolean {
  return Number.isSafeInteger(sizeBytes) && sizeBytes >= 0;
}

/**
 * A pool of sparse raw files in a folder, in the layout of Qubes' file and file-reflink drivers:
 * `<vid>.img` is a volume's content, `<vid>.img.<id>~` its revisions. Every change is made in a
 * temporary file of the pool and renamed into place, so a crash leaves the old content or the new
 * one; the pool's start sweeps the temporaries. How a file is copied (byte by byte, or by a
 * reflink) is the one thing the drivers built on this differ in.
 */
export class RawFileStorageDriver implements StorageDriver, ImageTransfer, EphemeralEncryption {
  protected readonly files: VolumeFiles;

  constructor(
    protected readonly pool: PoolFolder,
    protected readonly copies: RawFileCopies,
    private readonly clock: Clock,
  ) {
    this.files = new VolumeFiles(pool, VOLUME_SUFFIX);
  }

  readonly format = "raw";

  hostPath(vid: string): string {
    return path.join(this.pool.root, vid + VOLUME_SUFFIX);
  }

  async create(vid: string, sizeBytes: number): Promise<void> {
    if (!isValidVid(vid)) throw invalidVid(vid);
    if (!isByteCount(sizeBytes)) throw invalidVolumeSize(vid, sizeBytes);
    const { file, inNewFolder } = await this.files.fresh(vid);
    const make = async (target: string) => {
      try {
        const handle = await fs.open(target, "wx", 0o600);
        try {
          await handle.truncate(sizeBytes);
        } finally {
          await handle.close();
        }
      } catch (error) {
        throw this.translated(vid, error);
      }
    };
    if (inNewFolder) return this.files.createInNewFolder(vid, file, make);
    // Revisions of a volume deleted by a process that died before it removed them.
    await this.removeRevisions(file);
    await removeFile(file + EPHEMERAL_MARK);
    await this.files.createFrom(vid, file, make);
  }

  async delete(vid: string): Promise<boolean> {
    const file = await this.files.ifExists(vid);
    if (file === undefined) {
      // A delete a crash cut short moved the file away first: what it left beside it goes now.
      const place = await this.pool.fileOf(vid, VOLUME_SUFFIX);
      await this.removeRevisions(place);
      await removeFile(place + EPHEMERAL_MARK);
      return false;
    }
    await this.files.deleteWith(file, async () => {
      await this.removeRevisions(file);
      await removeFile(file + EPHEMERAL_MARK);
    });
    return true;
  }

  async list(): Promise<string[]> {
    return this.files.list();
  }

  async resize(vid: string, sizeBytes: number): Promise<void> {
    const file = await this.volumeFile(vid);
    if (!isByteCount(sizeBytes)) throw invalidVolumeSize(vid, sizeBytes);
    const handle = await fs.open(file, constants.O_RDWR | constants.O_NOFOLLOW);
    try {
      const { size } = await handle.stat();
      if (sizeBytes < size) throw shrinkRefused(vid, size, sizeBytes);
      if (sizeBytes > size) await handle.truncate(sizeBytes);
    } catch (error) {
      throw this.translated(vid, error);
    } finally {
      await handle.close();
    }
  }

  async snapshot(vid: string): Promise<Revision> {
    const file = await this.volumeFile(vid);
    const id = await this.files.nextRevisionId(file, this.clock.now());
    await this.copyInto(vid, file, this.files.revisionFile(file, id));
    const { size } = await fs.stat(file);
    return { id, createdAt: new Date(Number(id)), sizeBytes: size };
  }

  async revert(vid: string, revision: string): Promise<void> {
    const file = await this.volumeFile(vid);
    await this.copyInto(vid, await this.files.revisionPath(vid, file, revision), file);
  }

  async revisions(vid: string): Promise<Revision[]> {
    return this.revisionsOf(vid, await this.volumeFile(vid));
  }

  async deleteRevision(vid: string, revision: string): Promise<boolean> {
    const saved = await this.files.savedRevision(vid, await this.volumeFile(vid), revision);
    if (saved === undefined) return false;
    await fs.rm(saved);
    return true;
  }

  async openRead(vid: string, revision?: string): Promise<VolumeReader> {
    const file = await this.volumeFile(vid);
    return RawFileReader.open(vid, revision === undefined ? file : await this.files.revisionPath(vid, file, revision));
  }

  async openWrite(vid: string, sizeBytes?: number): Promise<VolumeWriter> {
    const file = await this.volumeFile(vid);
    const size = sizeBytes ?? (await this.volumeUsage(vid)).sizeBytes;
    if (!isByteCount(size)) throw invalidVolumeSize(vid, size);
    return RawFileWriter.open(vid, this.pool, size, async (temporary) => {
      // A volume deleted meanwhile stays deleted.
      if (!(await this.pool.regularFile(vid, file))) throw volumeNotFound(vid);
      await fs.rename(temporary, file);
      await removeFile(file + EPHEMERAL_MARK);
    });
  }

  async openImageRead(vid: string, _format: "qcow2", revision?: string): Promise<VolumeReader> {
    const file = await this.volumeFile(vid);
    try {
      return await openImageReader(vid, this.pool, revision === undefined ? file : await this.files.revisionPath(vid, file, revision), "raw");
    } catch (error) {
      throw this.translated(vid, error);
    }
  }

  async openImageWrite(vid: string, _format: "qcow2", imageBytes: number, accept: (sizeBytes: number) => void | Promise<void>): Promise<VolumeWriter> {
    const file = await this.volumeFile(vid);
    if (!isByteCount(imageBytes)) throw invalidVolumeSize(vid, imageBytes);
    return openImageWriter(vid, this.pool, imageBytes, accept, async (image) => {
      const raw = this.pool.temporary(VOLUME_SUFFIX);
      try {
        await runTool(QEMU_IMG, ["convert", "-q", "-f", "qcow2", "-O", "raw", image, raw]);
        if (!(await this.pool.regularFile(vid, file))) throw volumeNotFound(vid);
        await fs.rename(raw, file);
        await removeFile(file + EPHEMERAL_MARK);
      } catch (error) {
        throw this.translated(vid, error);
      } finally {
        await removeFile(raw);
      }
    });
  }

  async volumeUsage(vid: string): Promise<VolumeUsage> {
    const file = await this.volumeFile(vid);
    const stats = await fs.stat(file);
    const header = (await this.pool.regularFile(vid, file + EPHEMERAL_MARK)) ? await luksHeaderBytes(file) : 0;
    return { sizeBytes: stats.size - header, allocatedBytes: stats.blocks * 512, stamp: fileStamp(stats) };
  }

  /** A LUKS image of the volume's size, in its place: the volume's content until the next write replaces it. */
  async makeEphemeral(vid: string): Promise<EphemeralImage> {
    const file = await this.volumeFile(vid);
    const { sizeBytes } = await this.volumeUsage(vid);
    const image = this.pool.temporary(VOLUME_SUFFIX);
    try {
      const made = await makeEncryptedImage(this.pool, image, "luks", sizeBytes);
      if (!(await this.pool.regularFile(vid, file))) throw volumeNotFound(vid);
      // The mark first: a crash before the rename leaves it beside a plain file, whose start is no LUKS header of ours.
      await fs.writeFile(file + EPHEMERAL_MARK, "", { mode: 0o600 });
      await fs.rename(image, file);
      return made;
    } catch (error) {
      throw this.translated(vid, error);
    } finally {
      await removeFile(image);
    }
  }

  async poolUsage(): Promise<PoolUsage> {
    const files = (await this.pool.files()).map((file) => path.join(this.pool.root, file));
    const { bsize, blocks, bavail } = await fs.statfs(this.pool.root);
    return { usedBytes: await this.copies.usedBytes(files), capacityBytes: bsize * blocks, freeBytes: bsize * bavail };
  }

  /** The file of an existing volume; NOT_FOUND (VOLUME_NOT_FOUND) when there is none. */
  protected volumeFile(vid: string): Promise<string> {
    return this.files.existing(vid);
  }

  /** Copies `source` to a temporary, then renames it to `target`: target is the old file or the whole copy. */
  protected async copyInto(vid: string, source: string, target: string): Promise<void> {
    const temporary = this.pool.temporary(VOLUME_SUFFIX);
    try {
      await this.copies.copy(source, temporary);
      await fs.rename(temporary, target);
      if (target.endsWith(VOLUME_SUFFIX)) await removeFile(target + EPHEMERAL_MARK);
    } catch (error) {
      throw this.translated(vid, error);
    } finally {
      await removeFile(temporary);
    }
  }

  private async revisionsOf(vid: string, file: string): Promise<Revision[]> {
    const revisions: Revision[] = [];
    for (const id of await this.files.revisionIds(file)) {
      const stats = await this.pool.regularFile(vid, this.files.revisionFile(file, id));
      if (stats) revisions.push({ id, createdAt: new Date(Number(id)), sizeBytes: stats.size });
    }
    return revisions;
  }

  private async removeRevisions(file: string): Promise<void> {
    for (const id of await this.files.revisionIds(file)) await removeFile(this.files.revisionFile(file, id));
  }

  /** ENOSPC from a write or a tool is the pool being full: RESOURCE_EXHAUSTED. */
  protected translated(vid: string, error: unknown): unknown {
    if (isNoSpace(error) || (error instanceof ToolError && error.noSpace)) return noRoomOnDisk(vid, this.pool.root);
    const tooLarge = tooLargeFor(error);
    if (tooLarge !== undefined) return volumeTooLarge(vid, tooLarge);
    return error;
  }
}
