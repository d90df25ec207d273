import type { VolumeRecord } from "../model/volume";

const GiB = 1024 * 1024 * 1024;

/** The size of a VM's new volume of its own, by its name (Qubes' defaults). */
export const NEW_VOLUME_BYTES: Readonly<Record<string, number>> = { root: 10 * GiB, private: 2 * GiB, volatile: 10 * GiB };

/**
 * Whether a VM's volume is made anew at each start: a snapshot of its source (snap_on_start), or
 * volatile (neither snapshotted nor saved). Such a volume gets no file when its VM is made, as in
 * Qubes' file-reflink driver: its first start makes it, or the first change or read that needs
 * its bytes. Until then it has the size it will have and takes nothing on disk.
 */
export function isMadeAtStart(volume: Pick<VolumeRecord, "vmQid" | "snapOnStart" | "saveOnStop">): boolean {
  return volume.vmQid !== undefined && isRemadeAtEachStart(volume);
}

/** Whether each start makes the volume anew (snap_on_start, or volatile): what it held before is not kept. */
export function isRemadeAtEachStart(volume: Pick<VolumeRecord, "snapOnStart" | "saveOnStop">): boolean {
  return volume.snapOnStart || !volume.saveOnStop;
}
