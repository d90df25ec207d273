import { constants, promises as fs } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { bufferFor, type Extent, type VolumeReader, type VolumeWriter } from "../../../ports/storage-driver";
import { noRoomOnDisk, outOfRange } from "../../../ports/storage-errors";
import { isNoSpace, removeFile, type PoolFolder } from "./pool-folder";
import { imageExtents } from "./qemu-img";

/** Whether [offset, offset + length) lies within [0, sizeBytes). */
function within(offset: number, length: number, sizeBytes: number): boolean {
  return Number.isSafeInteger(offset) && offset >= 0 && length >= 0 && offset + length <= sizeBytes;
}

/**
 * Reads a raw file through a descriptor opened once, so that it keeps reading the content it
 * opened even when a revert or an import renames another file into the volume's place.
 */
export class RawFileReader implements VolumeReader {
  private closed = false;

  private constructor(
    private readonly vid: string,
    private readonly handle: FileHandle,
    readonly sizeBytes: number,
  ) {}

  /** Opens `file` (never through a symlink) as `vid`'s content. */
  static async open(vid: string, file: string): Promise<RawFileReader> {
    const handle = await fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      return new RawFileReader(vid, handle, (await handle.stat()).size);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  async extents(): Promise<Extent[]> {
    // The descriptor's own file, wherever its name went since it was opened.
    return imageExtents(`/proc/${process.pid}/fd/${this.handle.fd}`, "raw", this.sizeBytes);
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    if (!within(offset, length, this.sizeBytes)) throw outOfRange(this.vid, offset, length, this.sizeBytes);
    const bytes = into ? bufferFor(into, length) : new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.handle.read(bytes, done, length - done, offset + done);
      if (bytesRead === 0) break; // The file ends early only when it shrank under us.
      done += bytesRead;
    }
    // The rest reads as zeroes, whatever the caller's buffer held.
    if (done < length) bytes.fill(0, done);
    return bytes;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}

/**
 * Writes a new content into a temporary raw file in the pool, which `commit` puts in the
 * volume's place (a rename, or a conversion and a rename) when the writer finishes; an abort
 * removes it. The temporary starts as a hole of the size asked, so unwritten bytes cost nothing.
 */
export class RawFileWriter implements VolumeWriter {
  private closed = false;
  /** Whether any bytes were written: a content never written is all zeroes. */
  private written = false;

  private constructor(
    private readonly vid: string,
    private readonly pool: PoolFolder,
    private readonly temporary: string,
    private readonly handle: FileHandle,
    private readonly sizeBytes: number,
    private readonly commit: (temporary: string, written: boolean) => Promise<void>,
  ) {}

  /** `commit` gets the temporary, and whether anything was written into it (else it is all zeroes). */
  static async open(vid: string, pool: PoolFolder, sizeBytes: number, commit: (temporary: string, written: boolean) => Promise<void>): Promise<RawFileWriter> {
    const temporary = pool.temporary(".img");
    const handle = await fs.open(temporary, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      await handle.truncate(sizeBytes);
      return new RawFileWriter(vid, pool, temporary, handle, sizeBytes, commit);
    } catch (error) {
      await handle.close();
      await removeFile(temporary);
      throw error;
    }
  }

  async write(offset: number, bytes: Uint8Array): Promise<void> {
    if (this.closed) throw new Error(`the writer of ${this.vid} is closed`);
    if (!within(offset, bytes.length, this.sizeBytes)) throw outOfRange(this.vid, offset, bytes.length, this.sizeBytes);
    this.written ||= bytes.length > 0;
    let done = 0;
    try {
      while (done < bytes.length) {
        const { bytesWritten } = await this.handle.write(bytes, done, bytes.length - done, offset + done);
        done += bytesWritten;
      }
    } catch (error) {
      if (isNoSpace(error)) throw noRoomOnDisk(this.vid, this.pool.root);
      throw error;
    }
  }

  async finish(): Promise<void> {
    if (this.closed) throw new Error(`the writer of ${this.vid} is closed`);
    this.closed = true;
    try {
      await this.handle.sync();
      await this.handle.close();
      await this.commit(this.temporary, this.written);
    } catch (error) {
      if (isNoSpace(error)) throw noRoomOnDisk(this.vid, this.pool.root);
      throw error;
    } finally {
      await this.handle.close().catch(() => {});
      await removeFile(this.temporary);
    }
  }

  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close().catch(() => {});
    await removeFile(this.temporary);
  }
}
