import { constants, promises as fs } from "node:fs";
import { systemClock, type Clock } from "../../../ports/clock";
import type { CheapClone } from "../../../ports/storage-driver";
import { poolLocationUnusable } from "../../../ports/storage-errors";
import { isErrno, PoolFolder, removeFile } from "../shared/pool-folder";
import { RawFileStorageDriver, type RawFileCopies } from "../shared/raw-file-driver";
import { runTool } from "../shared/run-tool";

/**
 * Copies that are reflinks (FICLONE through libuv's copyfile, forced): the copy shares every
 * block with its source until one of them is written, so it costs no space and no time.
 */
const REFLINK_COPIES: RawFileCopies = {
  async copy(source, target) {
    await fs.copyFile(source, target, constants.COPYFILE_FICLONE_FORCE | constants.COPYFILE_EXCL);
  },
  usedBytes: sharedOnceBytes,
};

/**
 * Qubes' `file-reflink` driver: sparse raw files on a filesystem with reflinks (btrfs, xfs),
 * where revisions, snapshots taken at a start and clones are reflink copies.
 */
export class FileReflinkStorageDriver extends RawFileStorageDriver implements CheapClone {
  /** Opens the pool; FAILED_PRECONDITION (POOL_LOCATION_UNUSABLE) when its filesystem cannot reflink. */
  static async open(folder: string, clock: Clock = systemClock): Promise<FileReflinkStorageDriver> {
    const pool = await PoolFolder.open(folder);
    await probeReflinks(pool);
    return new FileReflinkStorageDriver(pool, REFLINK_COPIES, clock);
  }

  async clone(sourceVid: string, targetVid: string): Promise<void> {
    const source = await this.volumeFile(sourceVid);
    await this.copyInto(targetVid, source, await this.files.place(targetVid));
  }
}

/** Makes a reflink of a small file in the pool's folder, to find out whether its filesystem can. */
async function probeReflinks(pool: PoolFolder): Promise<void> {
  const source = pool.temporary(".probe");
  const copy = pool.temporary(".probe");
  try {
    await fs.writeFile(source, "reflink probe\n");
    await fs.copyFile(source, copy, constants.COPYFILE_FICLONE_FORCE);
  } catch (error) {
    if (isErrno(error, "EOPNOTSUPP", "ENOTSUP", "ENOSYS", "EXDEV", "EINVAL", "ENOTTY")) {
      throw poolLocationUnusable(pool.root, "its filesystem cannot make reflinks (file-reflink needs btrfs, or xfs made with reflink=1); use the file or qcow2 driver there");
    }
    throw error;
  } finally {
    await removeFile(source);
    await removeFile(copy);
  }
}

/**
 * Bytes the files take with blocks they share counted once: the union of their physical
 * extents, as filefrag (e2fsprogs; FIEMAP) lists them, after syncing them so that no extent is
 * still unplaced.
 */
async function sharedOnceBytes(files: readonly string[]): Promise<number> {
  const ranges: [number, number][] = [];
  for (let start = 0; start < files.length; start += 200) {
    const { stdout } = await runTool("filefrag", ["-s", "-v", "-b4096", "--", ...files.slice(start, start + 200)]);
    ranges.push(...physicalRanges(stdout));
  }
  return unionLength(ranges) * 4096;
}

/** `filefrag -v -b4096` lines of the form " 0:  0..  79:  3328..  3407:  80:  shared". */
const EXTENT_LINE = /^\s*\d+:\s*\d+\.\.\s*\d+:\s*(\d+)\.\.\s*(\d+):/;

export function physicalRanges(filefragOutput: string): [number, number][] {
  const ranges: [number, number][] = [];
  for (const line of filefragOutput.split("\n")) {
    const match = EXTENT_LINE.exec(line);
    if (match) ranges.push([Number(match[1]), Number(match[2]) + 1]);
  }
  return ranges;
}

function unionLength(ranges: [number, number][]): number {
  let total = 0;
  let end = -1;
  for (const [start, stop] of [...ranges].sort((a, b) => a[0] - b[0])) {
    if (stop <= end) continue;
    total += stop - Math.max(start, end);
    end = stop;
  }
  return total;
}
