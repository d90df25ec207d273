import { promises as fs } from "node:fs";
import path from "node:path";
import { isValidKernelName, type KernelFolder, type KernelModules } from "../../../ports/kernel-folder";
import type { VolumeReader } from "../../../ports/storage-driver";
import { RawFileReader } from "../shared/raw-file-io";

/** The modules image of each kernel of a folder on disk. */
const MODULES_IMAGE = "modules.img";

/** A kernel's name never holds "/" or is "." or ".." (the kernel property's form): it is one folder of the root. */
export class FileKernelFolder implements KernelFolder {
  constructor(private readonly root: string) {}

  get location(): string {
    return this.root;
  }

  /** Makes the folder when it is not there yet. */
  async make(): Promise<void> {
    await fs.mkdir(this.root, { recursive: true, mode: 0o755 });
  }

  async modulesImage(kernel: string): Promise<KernelModules | undefined> {
    if (!isValidKernelName(kernel)) return undefined;
    const folder = path.join(this.root, kernel);
    const file = path.join(folder, MODULES_IMAGE);
    try {
      // Neither the kernel's folder nor its image may be a link: what QEMU opens stays in the folder.
      if (!(await fs.lstat(folder)).isDirectory()) return undefined;
      const stats = await fs.lstat(file);
      if (!stats.isFile()) return undefined;
      return { kernel, path: file, sizeBytes: stats.size, allocatedBytes: stats.blocks * 512, modifiedAt: stats.mtime };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT" || (error as NodeJS.ErrnoException).code === "ENOTDIR") return undefined;
      throw error;
    }
  }

  async kernels(): Promise<KernelModules[]> {
    const entries = await fs.readdir(this.root, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return [];
      throw error;
    });
    const named = entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort();
    const found = await Promise.all(named.map((kernel) => this.modulesImage(kernel)));
    return found.filter((modules): modules is KernelModules => modules !== undefined);
  }

  async openModules(kernel: string): Promise<VolumeReader | undefined> {
    const modules = await this.modulesImage(kernel);
    // Opened without following a link: one planted since the look is refused by the open itself.
    return modules === undefined ? undefined : RawFileReader.open(kernel, modules.path);
  }

  async room(): Promise<{ capacityBytes: number; freeBytes: number } | undefined> {
    try {
      const { bsize, blocks, bavail } = await fs.statfs(this.root);
      return { capacityBytes: bsize * blocks, freeBytes: bsize * bavail };
    } catch (error) {
      // A folder removed under Steward has no room to tell.
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
  }
}
