/**
 * Volumes as their images, for the areas that hand them to a QEMU of their own (block exports):
 * the file and format a pool keeps a volume in, with a qcow2's backing chain, and the running VMs
 * that have it as a disk.
 */
import type { ExportImage } from "../../ports/block-exporter";
import type { Store } from "../../ports/store";
import type { DomainError } from "../errors";
import type { VolumeRecord } from "../model/volume";
import type { Pools } from "./pools";
import { volumeInUse } from "./storage-errors";
import type { VolumeName, Volumes } from "./volumes";

export interface VolumeImage {
  pool: string;
  vid: string;
  label: string;
  image: ExportImage;
  users: { vm: string; writes: boolean }[];
}

export class VolumeImages {
  constructor(
    private readonly store: Store,
    private readonly pools: Pools,
    private readonly volumes: Volumes,
    /** Whether the VM of this uuid runs (or is starting or stopping: its QEMU has the disks open). */
    private readonly isRunning: (uuid: string) => boolean,
    private readonly notExportable: (volume: string, why: string) => DomainError,
  ) {}

  async exportable(ref: VolumeName | undefined, field: string): Promise<VolumeImage> {
    const key = this.volumes.resolve(ref, field);
    await this.volumes.get(key);
    return this.current(key.pool, key.vid);
  }

  async current(pool: string, vid: string): Promise<VolumeImage> {
    const record = this.store.volumes.get(pool, vid);
    const label = record ? labelOf(this.store, record) : `${pool}:${vid}`;
    if (record === undefined || record.state !== "ready") throw this.notExportable(label, "it is not there, or is being changed");
    if (record.ephemeral) throw this.notExportable(label, "it is ephemeral: its key lives only in its VM's run");
    const driver = this.pools.driver(pool);
    const path = driver.hostPath(vid);
    if (path === undefined || (driver.format !== "raw" && driver.format !== "qcow2")) throw this.notExportable(label, `pool ${pool} keeps its volumes where QEMU cannot open them`);
    // As a start does: the drop of old revisions a halt queued is done before QEMU opens the image,
    // and a volume no start has made yet is made (empty).
    await this.volumes.settled(record);
    await this.volumes.makeIfAbsent(record);
    const backing = driver.backingChain ? await driver.backingChain(vid) : [];
    return { pool, vid, label, image: { path, format: driver.format, backing }, users: this.usersOf(record) };
  }

  async bitmapsOf(pool: string, vid: string): Promise<string[]> {
    return (await this.volumes.bitmaps({ pool, vid })).map((bitmap) => bitmap.name);
  }

  ready(pool: string, vid: string): boolean {
    return this.store.volumes.get(pool, vid)?.state === "ready";
  }

  inUse(volume: { vid: string }, why: string, vms: readonly string[]): DomainError {
    return volumeInUse(volume.vid, why, vms);
  }

  /** The running VMs with the volume as a disk: its own VM, and those it is attached to. */
  private usersOf(record: VolumeRecord): { vm: string; writes: boolean }[] {
    const users: { vm: string; writes: boolean }[] = [];
    const owner = record.vmQid === undefined ? undefined : this.store.vms.byQid(record.vmQid);
    if (owner && this.isRunning(owner.uuid)) users.push({ vm: owner.name, writes: record.rw });
    for (const attachment of this.store.attachments.ofVolume(record.pool, record.vid)) {
      const vm = this.store.vms.byQid(attachment.vmQid);
      if (vm && this.isRunning(vm.uuid)) users.push({ vm: vm.name, writes: attachment.rw });
    }
    return users;
  }
}

function labelOf(store: Store, record: VolumeRecord): string {
  const owner = record.vmQid === undefined ? undefined : store.vms.byQid(record.vmQid);
  return owner ? `${owner.name}:${record.name}` : `${record.pool}:${record.vid}`;
}
