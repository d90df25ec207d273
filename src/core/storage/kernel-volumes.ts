import type { KernelFolder, KernelModules } from "../../ports/kernel-folder";
import type { VolumeReader } from "../../ports/storage-driver";
import type { DomainError } from "../errors";
import { KERNEL_POOL } from "../model/pool";
import type { BuiltInPool, PoolView } from "./pools";
import { poolReadOnly } from "./storage-errors";
import type { LaunchDisk } from "../model/launch-plan";
import type { VmRecord } from "../model/vm-record";
import { vmSpec } from "../vms/properties/property-schema";
import type { PropertyResolver } from "../vms/properties/property-resolver";
import type { VolumeView } from "./volumes";

/**
 * The kernels' volumes, as Qubes' linux-kernel pool gives them: each kernel's modules (a volume
 * of pool linux-kernel, its vid the kernel's name), and a VM's kernel volume, the modules of the
 * kernel the VM boots (its kernel property, from its template or default_kernel), read-only,
 * made by no one but the host. A VM that boots its own kernel (kernel empty), or a kernel without
 * modules, has none. They are no records of the store: they follow the property and the folder
 * as they are.
 */
export class KernelVolumes implements BuiltInPool {
  readonly name = KERNEL_POOL;

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
    return this.volume(this.kernelOf(vm), vm);
  }

  /** A kernel's modules as a volume: the VM's that boots it when given, else the pool's own; undefined when it has none. */
  async volume(kernel: string, vm?: VmRecord): Promise<VolumeView | undefined> {
    const modules = await this.kernels.modulesImage(kernel);
    return modules === undefined ? undefined : viewOf(modules, vm);
  }

  /** Every kernel's modules, by kernel name: the linux-kernel pool's volumes. */
  async all(): Promise<VolumeView[]> {
    return (await this.kernels.kernels()).map((modules) => viewOf(modules));
  }

  /** Reads a kernel's modules, for an export; undefined when it has none. */
  open(kernel: string): Promise<VolumeReader | undefined> {
    return this.kernels.openModules(kernel);
  }

  /** The linux-kernel pool, as GetPool tells it. */
  async view(): Promise<PoolView> {
    const [kernels, room] = await Promise.all([this.kernels.kernels(), this.kernels.room()]);
    return {
      name: KERNEL_POOL,
      driver: KERNEL_POOL,
      parameters: { dir_path: this.kernels.location },
      revisionsToKeep: 0,
      ephemeralVolatile: false,
      limitBytes: 0,
      createdAt: new Date(0),
      sizeBytes: room?.capacityBytes ?? 0,
      usageBytes: kernels.reduce((sum, modules) => sum + modules.allocatedBytes, 0),
      freeBytes: room?.freeBytes ?? 0,
      volumeCount: kernels.length,
    };
  }

  refusal(): DomainError {
    return poolReadOnly(KERNEL_POOL, this.kernels.location);
  }

  /** The disk of a launch booting `kernel`: its modules, read-only; undefined when there are none. */
  async disk(kernel: string): Promise<LaunchDisk | undefined> {
    const modules = await this.kernels.modulesImage(kernel);
    return modules === undefined ? undefined : { name: "kernel", path: modules.path, format: "raw", readOnly: true };
  }
}

/** A kernel's modules as a volume: of pool linux-kernel, or the kernel volume of `vm`, which boots it. */
function viewOf(modules: KernelModules, vm?: VmRecord): VolumeView {
  return {
    pool: KERNEL_POOL,
    vid: modules.kernel,
    vmQid: vm?.qid,
    name: vm === undefined ? "" : "kernel",
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
    createdAt: vm?.createdAt ?? modules.modifiedAt,
    sizeBytes: modules.sizeBytes,
    usageBytes: modules.allocatedBytes,
    effectiveRevisionsToKeep: 0,
    hostPath: modules.path,
    vmName: vm?.name ?? "",
    attachments: [],
    isOutdated: false,
  };
}
