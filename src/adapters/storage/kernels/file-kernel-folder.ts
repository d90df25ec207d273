import { promises as fs } from "node:fs";
import path from "node:path";
import type { KernelFolder, KernelModules } from "../../../ports/kernel-folder";

/** The modules image of each kernel of a folder on disk. */
const MODULES_IMAGE = "modules.img";

/** A kernel's name never holds "/" or is "." or ".." (the kernel property's form): it is one folder of the root. */
export class FileKernelFolder implements KernelFolder {
  constructor(private readonly root: string) {}

  /** Makes the folder when it is not there yet. */
  async make(): Promise<void> {
    await fs.mkdir(this.root, { recursive: true, mode: 0o755 });
  }

  async modulesImage(kernel: string): Promise<KernelModules | undefined> {
    if (kernel === "" || kernel.includes("/") || kernel === "." || kernel === "..") return undefined;
    const folder = path.join(this.root, kernel);
    const file = path.join(folder, MODULES_IMAGE);
    try {
      // Neither the kernel's folder nor its image may be a link: what QEMU opens stays in the folder.
      if (!(await fs.lstat(folder)).isDirectory()) return undefined;
      const stats = await fs.lstat(file);
      if (!stats.isFile()) return undefined;
      return { path: file, sizeBytes: stats.size, allocatedBytes: stats.blocks * 512 };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT" || (error as NodeJS.ErrnoException).code === "ENOTDIR") return undefined;
      throw error;
    }
  }
}
