import type { VolumeReader } from "./storage-driver";

/** A kernel's name (the kernel property's value, or empty for none): letters, digits, '.', '_', '+' or '-', never "." or "..", no ".." in it: one folder's name, never a path. */
export const KERNEL_NAME = /^(?!\.\.?$)(?!.*\.\.)[A-Za-z0-9._+-]*$/;
const MAX_KERNEL_NAME = 255;

/** Whether `name` names a kernel of the folder. */
export function isValidKernelName(name: string): boolean {
  return name !== "" && name.length <= MAX_KERNEL_NAME && KERNEL_NAME.test(name);
}

/**
 * Steward's kernel folder (`<data-dir>/kernels`), as Qubes' vm-kernels: a folder per kernel, by
 * its name (the VMs' kernel property), holding what booting it takes (vmlinuz, initramfs) and
 * modules.img, its modules, which a VM booting that kernel sees as its read-only kernel volume.
 */
export interface KernelFolder {
  /** Where the folder is on the host, as the linux-kernel pool's dir_path tells it. */
  readonly location: string;
  /**
   * The kernel's modules image; undefined when the kernel has none, or is not in the folder. A
   * symbolic link, which could lead out of the folder, counts as none.
   */
  modulesImage(kernel: string): Promise<KernelModules | undefined>;
  /** The modules images of every kernel that has one (none through a symbolic link), by kernel name. */
  kernels(): Promise<KernelModules[]>;
  /** Reads the kernel's modules image, as a volume is read for an export; undefined when it has none. */
  openModules(kernel: string): Promise<VolumeReader | undefined>;
  /** The room of the folder's filesystem; undefined for a folder that is not there. */
  room(): Promise<{ capacityBytes: number; freeBytes: number } | undefined>;
}

export interface KernelModules {
  /** The kernel whose modules they are. */
  kernel: string;
  path: string;
  sizeBytes: number;
  allocatedBytes: number;
  /** When the image was last written: the linux-kernel pool's volume was made then. */
  modifiedAt: Date;
}
