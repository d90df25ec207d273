/** How a volume's bytes are stored: what its pool's driver keeps. */
export type VolumeFormat = "raw" | "qcow2";

/**
 * Where a volume's record is in its life: `ready`, or a change that touches its files and was
 * written down before it began (`creating`, `deleting`), so that a start after a crash can finish
 * or undo it: the record and the files never disagree for longer than the crash.
 */
export type VolumeState = "creating" | "ready" | "deleting";

/** A volume as the store keeps it (Qubes' volume: its pool, vid and settings). */
export interface VolumeRecord {
  pool: string;
  vid: string;
  /** The VM that owns it, by qid; undefined for a pool's own volume (CreateVolume). */
  vmQid: number | undefined;
  /** Its name in the VM (root, private, volatile, kernel); empty for a pool's own volume. */
  name: string;
  format: VolumeFormat;
  rw: boolean;
  snapOnStart: boolean;
  saveOnStop: boolean;
  /** The volume it is a snapshot of ("pool:vid"), for snap_on_start; empty when none. */
  source: string;
  /** The source's content stamp (VolumeUsage.stamp) when it was last snapshotted from it; empty before. */
  sourceStamp: string;
  /** How many old revisions it keeps; undefined to follow its pool's. */
  revisionsToKeep: number | undefined;
  ephemeral: boolean;
  /** A quota on its size; 0 for none. */
  limitBytes: number;
  internal: boolean;
  state: VolumeState;
  createdAt: Date;
}

/** A volume attached to a VM as an extra disk (AttachVolume), persistently. */
export interface VolumeAttachmentRecord {
  vmQid: number;
  /** The disk's name in the VM. */
  name: string;
  pool: string;
  vid: string;
  rw: boolean;
  /** Its place among the VM's extra disks; those of one order go by name. */
  order: number;
}
