/**
 * Steward's kernel folder (`<data-dir>/kernels`), as Qubes' vm-kernels: a folder per kernel, by
 * its name (the VMs' kernel property), holding what booting it takes (vmlinuz, initramfs) and
 * modules.img, its modules, which a VM booting that kernel sees as its read-only kernel volume.
 */
export interface KernelFolder {
  /**
   * The kernel's modules image; undefined when the kernel has none, or is not in the folder. A
   * symbolic link, which could lead out of the folder, counts as none.
   */
  modulesImage(kernel: string): Promise<KernelModules | undefined>;
}

export interface KernelModules {
  path: string;
  sizeBytes: number;
  allocatedBytes: number;
}
