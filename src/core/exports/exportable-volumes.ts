/**
 * What the exports area needs of the storage area, which the composition root hands it: a
 * volume named by a request, with its image and the running VMs that have it as a disk.
 */
import type { DomainError } from "../errors";
import type { ExportImage } from "../../ports/block-exporter";

/** A volume as a request names it (VolumeRef): by its VM and name, or by its pool and vid. */
export interface VolumeNaming {
  vm: string;
  name: string;
  pool: string;
  vid: string;
}

/** A running VM that has the volume as a disk. */
export interface VolumeUser {
  vm: string;
  /** Whether it has the disk writable. */
  writes: boolean;
}

export interface ExportableVolume {
  pool: string;
  vid: string;
  /** How errors name it: "pool:vid", or "vm:name" for a VM's own volume. */
  label: string;
  image: ExportImage;
  users: readonly VolumeUser[];
}

export interface ExportableVolumes {
  /**
   * The volume a request names, checked to have an image QEMU can open (not a memory pool's,
   * not an ephemeral one); NOT_FOUND, INVALID_ARGUMENT naming `field`, or FAILED_PRECONDITION.
   */
  exportable(ref: VolumeNaming | undefined, field: string): Promise<ExportableVolume>;
  /** The volume of an export made earlier, as it is now (a restart serves it again). */
  current(pool: string, vid: string): Promise<ExportableVolume>;
  /** The names of the volume's persistent dirty bitmaps, which an NBD export may expose. */
  bitmapsOf(pool: string, vid: string): Promise<string[]>;
  /** Whether the volume is there and not being changed, now (within the caller's transaction). */
  ready(pool: string, vid: string): boolean;
  /** The storage area's VOLUME_IN_USE, for a volume an export cannot share. */
  inUse(volume: ExportableVolume, why: string, vms: readonly string[]): DomainError;
}
