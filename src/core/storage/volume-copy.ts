import { callCancelled } from "../errors";
import type { StorageDriver } from "../../ports/storage-driver";

/** The most bytes read or written at once: a copy's memory does not grow with the volume. */
export const COPY_CHUNK_BYTES = 1024 * 1024;

export interface CopyOptions {
  /** The target's new size; the source's when absent. Bytes past it are not copied (a shrink). */
  sizeBytes?: number;
  /** Told the bytes covered so far, holes included, after each chunk. */
  progress?: (doneBytes: number, totalBytes: number) => void;
  /** Aborts the copy; the target is left as it was. */
  signal?: AbortSignal;
}

/**
 * Replaces the content of `targetVid` (in `target`) with that of `sourceVid` (in `source`),
 * chunk by chunk through a reader and a writer, skipping holes: the slow way, for drivers that
 * cannot clone cheaply, for copies across pools, and for a shrink. All or nothing: the target
 * changes only when the writer finishes. Source and target may be one volume (a shrink): the
 * reader keeps the content it opened.
 */
export async function copyContent(source: StorageDriver, sourceVid: string, target: StorageDriver, targetVid: string, options: CopyOptions = {}): Promise<void> {
  const reader = await source.openRead(sourceVid);
  try {
    const sizeBytes = options.sizeBytes ?? reader.sizeBytes;
    const writer = await target.openWrite(targetVid, sizeBytes);
    try {
      for (const extent of await reader.extents()) {
        const end = Math.min(extent.offset + extent.length, sizeBytes);
        for (let offset = extent.offset; offset < end; offset += COPY_CHUNK_BYTES) {
          if (options.signal?.aborted) throw callCancelled("the copy");
          const length = Math.min(COPY_CHUNK_BYTES, end - offset);
          if (extent.allocated) await writer.write(offset, await reader.read(offset, length));
          options.progress?.(offset + length, sizeBytes);
        }
      }
      await writer.finish();
    } finally {
      await writer.abort();
    }
  } finally {
    await reader.close();
  }
}

/** Makes `vid`'s content all zeroes, keeping its size: a new, empty content swapped in at once. */
export async function emptyContent(driver: StorageDriver, vid: string): Promise<void> {
  const writer = await driver.openWrite(vid);
  try {
    await writer.finish();
  } finally {
    await writer.abort();
  }
}
