import { HOST_SUBJECT, type EventSubject, type NewEvent } from "../model/event";
import type { VolumeRecord } from "../model/volume";

/** The events of pools (about the host) and volumes (about the VM owning one, else the host): docs/EVENTS.md, Storage. */
function about(subject: EventSubject, name: string, kwargs: Readonly<Record<string, string>>): NewEvent {
  return { subject: subject.name, subjectUuid: subject.uuid, name, kwargs };
}

export function poolAdd(pool: string, driver: string): NewEvent {
  return about(HOST_SUBJECT, "pool-add", { pool, driver });
}

export function poolDelete(pool: string): NewEvent {
  return about(HOST_SUBJECT, "pool-delete", { pool });
}

export function poolSet(pool: string, property: string, newValue: string, oldValue: string): NewEvent {
  return about(HOST_SUBJECT, `pool-set:${property}`, { pool, newvalue: newValue, oldvalue: oldValue });
}

/** A pool's room left fell below `thresholdPercent` of its size (told once, until it rises above again). */
export function poolSpaceLow(pool: string, freeBytes: number, sizeBytes: number, thresholdPercent: number): NewEvent {
  return about(HOST_SUBJECT, "pool-space-low", { pool, free_bytes: String(freeBytes), size_bytes: String(sizeBytes), threshold_percent: String(thresholdPercent) });
}

/**
 * What every volume event says of its volume: its pool and vid, and for a VM's own volume the
 * VM and the volume's name in it (Qubes' `volume=private`).
 */
function told(subject: EventSubject, name: string, volume: VolumeRecord, kwargs: Readonly<Record<string, string>> = {}): NewEvent {
  const owner: Record<string, string> = subject.name === "" ? {} : { vm: subject.name };
  if (volume.name !== "") owner.volume = volume.name;
  return about(subject, name, { pool: volume.pool, vid: volume.vid, ...owner, ...kwargs });
}

export function volumeCreate(subject: EventSubject, volume: VolumeRecord, sizeBytes: number): NewEvent {
  return told(subject, "volume-create", volume, { size_bytes: String(sizeBytes), format: volume.format });
}

export function volumeDelete(subject: EventSubject, volume: VolumeRecord): NewEvent {
  return told(subject, "volume-delete", volume);
}

export function volumeResize(subject: EventSubject, volume: VolumeRecord, sizeBytes: number, oldSizeBytes: number): NewEvent {
  return told(subject, "volume-resize", volume, { size_bytes: String(sizeBytes), old_size_bytes: String(oldSizeBytes) });
}

export function volumeSnapshot(subject: EventSubject, volume: VolumeRecord, revision: string): NewEvent {
  return told(subject, "volume-snapshot", volume, { revision });
}

export function volumeRevert(subject: EventSubject, volume: VolumeRecord, revision: string): NewEvent {
  return told(subject, "volume-revert", volume, { revision });
}

export function volumeClear(subject: EventSubject, volume: VolumeRecord): NewEvent {
  return told(subject, "volume-clear", volume);
}

export function volumeSet(subject: EventSubject, volume: VolumeRecord, property: string, newValue: string, oldValue: string): NewEvent {
  return told(subject, `volume-set:${property}`, volume, { newvalue: newValue, oldvalue: oldValue });
}

/** An import begins: of a client's bytes, or of another volume's content (`from`, a clone). */
export function volumeImportBegin(subject: EventSubject, volume: VolumeRecord, sizeBytes: number, from?: { pool: string; vid: string }): NewEvent {
  const source: Record<string, string> = from === undefined ? {} : { source_pool: from.pool, source_vid: from.vid };
  return told(subject, "volume-import-begin", volume, { size_bytes: String(sizeBytes), ...source });
}

/** How far an import has got; at most once a second. */
export function volumeImportProgress(subject: EventSubject, volume: VolumeRecord, bytes: number, sizeBytes: number): NewEvent {
  return told(subject, "volume-import-progress", volume, { bytes: String(bytes), size_bytes: String(sizeBytes) });
}

export function volumeImportEnd(subject: EventSubject, volume: VolumeRecord, success: boolean, bytes: number): NewEvent {
  return told(subject, "volume-import-end", volume, { success: success ? "True" : "False", bytes: String(bytes) });
}

/** A volume became an extra disk of `vm` (AttachVolume): about that VM. */
export function volumeAttach(vm: EventSubject, volume: VolumeRecord, disk: string, rw: boolean, order: number): NewEvent {
  return told(vm, "volume-attach", volume, { vm: vm.name, name: disk, rw: rw ? "True" : "False", order: String(order) });
}

export function volumeDetach(vm: EventSubject, volume: { pool: string; vid: string }, disk: string): NewEvent {
  return about(vm, "volume-detach", { pool: volume.pool, vid: volume.vid, vm: vm.name, name: disk });
}

/** A dirty bitmap of the volume was added, cleared or removed (volume-bitmap-add, -clear, -remove). */
export function volumeBitmap(subject: EventSubject, volume: VolumeRecord, change: "add" | "clear" | "remove", bitmap: string): NewEvent {
  return told(subject, BITMAP_EVENTS[change], volume, { bitmap });
}

const BITMAP_EVENTS = { add: "volume-bitmap-add", clear: "volume-bitmap-clear", remove: "volume-bitmap-remove" } as const;
