import { randomUUID } from "node:crypto";
import { constants, promises as fs, type Stats } from "node:fs";
import path from "node:path";
import { isValidVid } from "../../../ports/storage-driver";
import { invalidVid, poolLocationUnusable, unsafeVolumePath } from "../../../ports/storage-errors";
import { Qcow2TooLargeError } from "./qcow2-overlay";

/**
 * Where a pool keeps the files of a write that has not finished (imports, copies, snapshots in
 * the making). "~" is in no vid, so no volume's file can be named like it.
 */
const TEMPORARY_FOLDER = "tmp~";

/**
 * A pool's folder on the host, shared by the drivers that keep volumes as files. It turns a vid
 * into a path that stays inside the folder: the vid's segments are plain names (isValidVid), and
 * every folder on the way must be a real folder of the pool's, not a symlink someone planted.
 */
export class PoolFolder {
  private constructor(
    /** The folder, as an absolute path with no symlink in it. */
    readonly root: string,
  ) {}

  /**
   * Opens the folder, making it when it is missing, and sweeps what a write that never finished
   * left (a process that was killed): temporaries belong to no volume. FAILED_PRECONDITION
   * (POOL_LOCATION_UNUSABLE) when it is no folder, or one Steward cannot write.
   */
  static async open(folder: string): Promise<PoolFolder> {
    try {
      await refusePseudoFilesystem(folder);
      await fs.mkdir(folder, { recursive: true });
      const root = await fs.realpath(folder);
      if (!(await fs.stat(root)).isDirectory()) throw poolLocationUnusable(folder, "it is not a folder");
      await fs.access(root, constants.R_OK | constants.W_OK | constants.X_OK);
      const pool = new PoolFolder(root);
      await pool.sweepTemporaries();
      return pool;
    } catch (error) {
      if (isErrno(error)) throw poolLocationUnusable(folder, describeErrno(error));
      throw error;
    }
  }

  /**
   * The path of `vid`'s file with `suffix`, under folders that are the pool's own; with
   * `makeFolders`, the folders on the way are made. INVALID_ARGUMENT for a vid that is no
   * plain path (INVALID_VOLUME_ID) or whose folders lead elsewhere (VOLUME_PATH_UNSAFE).
   */
  async fileOf(vid: string, suffix: string, options: { makeFolders?: boolean } = {}): Promise<string> {
    if (!isValidVid(vid)) throw invalidVid(vid);
    const segments = vid.split("/");
    const name = segments.pop()!;
    const folder = path.join(this.root, ...segments);
    // One call for the common case: a folder whose real path is its own has no symlink on the way.
    if (segments.length === 0 || (await realFolder(folder)) === folder) return path.join(folder, name + suffix);
    return this.walkTo(vid, segments, name + suffix, options);
  }

  /**
   * Where a new volume `vid`'s file goes, its folders made, as fileOf with makeFolders; and
   * whether the folder holding it was made by this call, so that nothing can be in it yet.
   */
  async newFileOf(vid: string, suffix: string): Promise<{ file: string; inNewFolder: boolean }> {
    if (!isValidVid(vid)) throw invalidVid(vid);
    const segments = vid.split("/");
    const name = segments.pop()!;
    if (segments.length === 0) return { file: path.join(this.root, name + suffix), inNewFolder: false };
    // The folders above the volume's own are checked as fileOf does; the volume's own is made
    // at once when missing (a VM's first volume): with no lookup first, nothing fails on the way.
    const own = segments.pop()!;
    const folder = segments.length === 0 ? path.join(this.root, own) : await this.walkTo(vid, segments, own, { makeFolders: true });
    // Recursive: no EEXIST when it is there already, and its parents are the pool's, checked above.
    const made = await fs.mkdir(folder, { recursive: true }).catch(async (error: unknown) => {
      // A symlink someone planted there (dangling, or to a file) is said to be one.
      await this.requireOwnFolder(vid, folder);
      throw error;
    });
    if (made === undefined) await this.requireOwnFolder(vid, folder);
    return { file: path.join(folder, name + suffix), inNewFolder: made !== undefined };
  }

  /** INVALID_ARGUMENT (VOLUME_PATH_UNSAFE) when something but a folder of the pool's own is at `folder`. */
  private async requireOwnFolder(vid: string, folder: string): Promise<void> {
    const stats = await lstatOrUndefined(folder);
    if (stats !== undefined && !stats.isDirectory()) throw unsafeVolumePath(vid, `${this.relative(folder)} in its pool is ${describeKind(stats)}, not a folder of the pool's own`);
  }

  /** The folders on the way to `vid`'s file, one by one: each must be a folder of the pool's own, or missing (made with `makeFolders`). */
  private async walkTo(vid: string, segments: readonly string[], fileName: string, options: { makeFolders?: boolean }): Promise<string> {
    let folder = this.root;
    let made = false;
    for (const [index, segment] of segments.entries()) {
      folder = path.join(folder, segment);
      // Below a folder made just now, nothing but what this makes can be there.
      let stats = made ? undefined : await lstatOrUndefined(folder);
      if (stats === undefined) {
        // Nothing below a missing folder can be anyone's symlink.
        if (!options.makeFolders) return path.join(folder, ...segments.slice(index + 1), fileName);
        made = await fs.mkdir(folder).then(
          () => true,
          (error: unknown) => {
            if (!isErrno(error, "EEXIST")) throw error;
            return false;
          },
        );
        if (made) continue;
        stats = await fs.lstat(folder);
      }
      if (!stats.isDirectory()) throw unsafeVolumePath(vid, `${this.relative(folder)} in its pool is ${describeKind(stats)}, not a folder of the pool's own`);
    }
    return path.join(folder, fileName);
  }

  /**
   * What is at `file`: undefined when nothing is, its stats for a regular file, INVALID_ARGUMENT
   * (VOLUME_PATH_UNSAFE) for anything else (a symlink is never followed).
   */
  async regularFile(vid: string, file: string): Promise<Stats | undefined> {
    const stats = await lstatOrUndefined(file);
    if (stats !== undefined && !stats.isFile()) throw unsafeVolumePath(vid, `${this.relative(file)} in its pool is ${describeKind(stats)}, not a file of the pool's own`);
    return stats;
  }

  /** A new path for a temporary file, in the pool so that renaming it into place is atomic. */
  temporary(suffix = ""): string {
    return path.join(this.root, TEMPORARY_FOLDER, `${randomUUID()}${suffix}`);
  }

  /** The regular files of the pool, relative to its folder, temporaries left out; symlinks are not followed. */
  async files(): Promise<string[]> {
    const found: string[] = [];
    const walk = async (folder: string, prefix: string): Promise<void> => {
      for (const entry of await fs.readdir(folder, { withFileTypes: true })) {
        const relative = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
        if (entry.isDirectory() && relative !== TEMPORARY_FOLDER) await walk(path.join(folder, entry.name), relative);
        else if (entry.isFile()) found.push(relative);
      }
    };
    await walk(this.root, "");
    return found;
  }

  /** The entries of the folder holding `file`; empty when it does not exist. */
  async siblings(file: string): Promise<string[]> {
    try {
      return await fs.readdir(path.dirname(file));
    } catch (error) {
      if (isErrno(error, "ENOENT")) return [];
      throw error;
    }
  }

  relative(file: string): string {
    return path.relative(this.root, file);
  }

  private async sweepTemporaries(): Promise<void> {
    const temporaries = path.join(this.root, TEMPORARY_FOLDER);
    await fs.rm(temporaries, { recursive: true, force: true });
    await fs.mkdir(temporaries);
  }
}

/**
 * The kernel's own filesystems, by statfs(2) type: they hold no files of anyone's, and a
 * recursive mkdir in /proc never returns (Node 20), so a pool there must be refused first.
 */
const PSEUDO_FILESYSTEMS: ReadonlyMap<number, string> = new Map([
  [0x9fa0, "procfs"],
  [0x62656572, "sysfs"],
  [0x1cd1, "devpts"],
  [0x27e0eb, "cgroup"],
  [0x63677270, "cgroup2"],
  [0x64626720, "debugfs"],
  [0x74726163, "tracefs"],
  [0x73636673, "securityfs"],
  [0xcafe4a11, "bpf"],
]);

/** FAILED_PRECONDITION (POOL_LOCATION_UNUSABLE) when `folder`, or the nearest folder above it that exists, is on one of the kernel's own filesystems. */
async function refusePseudoFilesystem(folder: string): Promise<void> {
  let existing = folder;
  for (;;) {
    try {
      const { type } = await fs.statfs(existing);
      const kind = PSEUDO_FILESYSTEMS.get(type);
      if (kind !== undefined) throw poolLocationUnusable(folder, `it is on ${kind}, a filesystem of the kernel's own, which holds no files`);
      return;
    } catch (error) {
      const parent = path.dirname(existing);
      // Missing: its parent's filesystem is the one it would be made on.
      if (!isErrno(error, "ENOENT") || parent === existing) throw error;
      existing = parent;
    }
  }
}

/** Whether `error` is a system call's, with one of `codes` (any code when none is given). Not instanceof: Node's errors may come from another realm. */
export function isErrno(error: unknown, ...codes: string[]): error is NodeJS.ErrnoException {
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === "string" && (codes.length === 0 || codes.includes(code));
}

/** Whether `error` says a filesystem is full. */
export function isNoSpace(error: unknown): boolean {
  return isErrno(error, "ENOSPC", "EDQUOT");
}

export async function lstatOrUndefined(file: string): Promise<Stats | undefined> {
  try {
    return await fs.lstat(file);
  } catch (error) {
    if (isErrno(error, "ENOENT", "ENOTDIR")) return undefined;
    throw error;
  }
}

/** Removes a file that may be gone already. */
export async function removeFile(file: string): Promise<void> {
  try {
    await fs.unlink(file);
  } catch (error) {
    if (!isErrno(error, "ENOENT")) throw error;
  }
}

/**
 * The real path of `folder` when it is a folder; undefined when it cannot tell (missing, not a
 * folder, a loop of symlinks, a folder it may not read): the walk folder by folder then says why.
 */
async function realFolder(folder: string): Promise<string | undefined> {
  try {
    return await fs.realpath(folder + path.sep);
  } catch (error) {
    if (isErrno(error)) return undefined;
    throw error;
  }
}

function describeKind(stats: Stats): string {
  if (stats.isSymbolicLink()) return "a symlink";
  if (stats.isDirectory()) return "a folder";
  if (stats.isFile()) return "a file";
  return "a special file";
}

function describeErrno(error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case "EACCES":
    case "EPERM":
      return "Steward may not write there";
    case "ENOTDIR":
    case "EEXIST":
      return "a file is in the way";
    case "EROFS":
      return "its filesystem is read-only";
    default:
      return error.message;
  }
}

/**
 * What tells one content of a file from another: a write changes its modification time, a
 * file renamed into its place (an import, a revert, a snapshot's new overlay) its inode.
 */
export function fileStamp(stats: Stats): string {
  return `${stats.dev}:${stats.ino}:${stats.mtimeMs}:${stats.size}`;
}

/** Why a size cannot be had, when `error` says it is too large (EFBIG, or qemu-img's words); else undefined. */
export function tooLargeFor(error: unknown): string | undefined {
  if (isErrno(error, "EFBIG")) return "past the largest file its filesystem holds";
  if (error instanceof Qcow2TooLargeError) return error.message;
  const said = error instanceof Error && "stderr" in error && typeof error.stderr === "string" ? error.stderr : "";
  if (/too large|File too large|exceeds/i.test(said)) return `qemu-img says: ${said.trim().split("\n")[0]}`;
  return undefined;
}
