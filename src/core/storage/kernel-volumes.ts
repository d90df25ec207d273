import type { KernelFolder } from "../../ports/kernel-folder";
import type { LaunchDisk } from "../model/launch-plan";
import type { VmRecord } from "../model/vm-record";
import { vmSpec } from "../vms/properties/property-schema";
import type { PropertyResolver } from "../vms/properties/property-resolver";
import type { VolumeView } from "./volumes";

/** The pool Qubes names the kernels' volumes by: the host's kernel folder, read-only. */
export const KERNEL_POOL = "linux-kernel";

/**
 * A VM's kernel volume, as Qubes' linux-kernel pool gives it: the modules of the kernel the VM
 * boots (its kernel property, from its template or default_kernel), read-only, made by no one
 * but the host. A VM that boots its own kernel (kernel empty), or a kernel without modules, has
 * none. It is no record of the store: it follows the property and the folder as they are.
 */
export class KernelVolumes {
  constructor(
    private readonly kernels: KernelFolder,
    private readonly resolver: PropertyResolver,
  ) {}

  /** The kernel the VM boots now; empty for its own. */
  kernelOf(vm: VmRecord): string {
    return this.resolver.vm(vm, vmSpec("kernel")).value as string;
  }

  /** The VM's kernel volume, as GetVolume and ListVolumes show it; undefined when it has none. */
  async of(vm: VmRecord): Promise<VolumeView | undefined> {
    const kernel = this.kernelOf(vm);
    const modules = await this.kernels.modulesImage(kernel);
    if (modules === undefined) return undefined;
    return {
      pool: KERNEL_POOL,
      vid: kernel,
      vmQid: vm.qid,
      name: "kernel",
      format: "raw",
      rw: false,
      snapOnStart: false,
      saveOnStop: false,
      source: "",
      sourceStamp: "",
      revisionsToKeep: 0,
      ephemeral: false,
      limitBytes: 0,
      internal: false,
      state: "ready",
      createdAt: vm.createdAt,
      sizeBytes: modules.sizeBytes,
      usageBytes: modules.allocatedBytes,
      effectiveRevisionsToKeep: 0,
      hostPath: modules.path,
      vmName: vm.name,
      attachments: [],
      isOutdated: false,
    };
  }

  /** The disk of a launch booting `kernel`: its modules, read-only; undefined when there are none. */
  async disk(kernel: string): Promise<LaunchDisk | undefined> {
    const modules = await this.kernels.modulesImage(kernel);
    return modules === undefined ? undefined : { name: "kernel", path: modules.path, format: "raw", readOnly: true };
  }
}
