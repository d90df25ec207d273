import { promises as fs } from "node:fs";
import { systemClock, type Clock } from "../../../ports/clock";
import { PoolFolder } from "../shared/pool-folder";
import { RawFileStorageDriver, type RawFileCopies } from "../shared/raw-file-driver";
import { runTool } from "../shared/run-tool";

/**
 * Copies that really copy: coreutils' cp finds the holes (SEEK_DATA, SEEK_HOLE) and leaves
 * them holes, and is told never to reflink, so that this driver behaves the same on every
 * filesystem. What the files take is what du counts, since they share nothing.
 */
const SPARSE_COPIES: RawFileCopies = {
  async copy(source, target) {
    await runTool("cp", ["--sparse=always", "--reflink=never", "--", source, target]);
  },
  async usedBytes(files) {
    let total = 0;
    for (const file of files) total += (await fs.lstat(file)).blocks * 512;
    return total;
  },
};

/**
 * Qubes' `file` driver: a folder of sparse raw files, on any filesystem. A revision, a
 * snapshot taken at a start and a clone are whole copies, which cost the space and the time of
 * the volume's data; the core copies clones through a reader and a writer, with progress.
 */
export class FileStorageDriver extends RawFileStorageDriver {
  static async open(folder: string, clock: Clock = systemClock): Promise<FileStorageDriver> {
    return new FileStorageDriver(await PoolFolder.open(folder), SPARSE_COPIES, clock);
  }
}
