import type { Store } from "../../ports/store";
import type { EventLog } from "../events/event-log";
import type { HotPlug } from "../../ports/hypervisor";
import type { LaunchDisk } from "../model/launch-plan";
import type { VolumeAttachmentRecord, VolumeRecord } from "../model/volume";
import type { VmRecord } from "../model/vm-record";
import type { CallContext } from "../shared/call-context";
import { vmIsAdmin } from "../vms/vm-errors";
import type { VmOperations } from "../vms/vm-operations";
import type { Pools } from "./pools";
import { diskNameTaken, invalidDiskName, volumeAttached, volumeInUse, volumeNotAttached, volumeOwned } from "./storage-errors";
import { attachedVmNames } from "./attached-vms";
import { volumeAttach, volumeDetach } from "./storage-events";
import { refuseExported, type VolumeName, type Volumes, type VolumeView } from "./volumes";
import { volumeNotFound } from "../../ports/storage-errors";

/** A disk name: what the guest's disk is called, as VolumeAttachment.name says. */
const DISK_NAME = /^[a-z][a-z0-9_-]{0,31}$/;
/** The names of a VM's own volumes, which no attached volume takes. */
export const OWN_DISK_NAMES: readonly string[] = ["root", "private", "volatile", "kernel"];

/** What attachments need of the VMs that run: the lifecycle area's, handed over by the composition root. */
export interface RunningDisks {
  /** Whether the VM's guest runs (paused included): its disks change only by hot-plug. */
  isRunning(vm: VmRecord): boolean;
  /** The running guest's hot-plug; FAILED_PRECONDITION (CAPABILITY_MISSING) where the hypervisor offers none. */
  hotPlug(vm: VmRecord): HotPlug;
}

export interface AttachRequest {
  vm: string;
  volume: VolumeName | undefined;
  name: string;
  rw: boolean;
  order: number;
}

/**
 * Volumes attached to VMs as extra disks (mgmt1 vm.volume.Attach/Detach), persistently: each is
 * in its VM's launch plan after the VM's own disks, and a change while the VM runs is a hot-plug
 * where the hypervisor can (else CAPABILITY_MISSING). One VM at most has a volume attached
 * writable, and then no other VM has it at all; another VM's own volume is attached read-only.
 * Attaching and detaching run in the VM's turn, so no start or stop comes between.
 */
export class VolumeAttachments {
  constructor(
    private readonly store: Store,
    private readonly volumes: Volumes,
    private readonly pools: Pools,
    private readonly vmOperations: VmOperations,
    private readonly running: RunningDisks,
    private readonly events: EventLog,
  ) {}

  /** Attaches the volume; the same attachment again changes nothing. Returns the volume with its attachments. */
  async attach(request: AttachRequest, ctx: CallContext): Promise<VolumeView> {
    checkDiskName(request.name, "name");
    const key = this.volumes.resolve(request.volume, "volume");
    return this.vmOperations.on(request.vm, "vm", ctx, "attach a volume to it", async (vm) => {
      if (vm.klass === "AdminVM") throw vmIsAdmin(vm, "given volumes");
      const volume = this.ready(key);
      const attachment: VolumeAttachmentRecord = { vmQid: vm.qid, name: request.name, pool: key.pool, vid: key.vid, rw: request.rw, order: request.order };
      const earlier = this.store.attachments.ofVm(vm.qid).find((other) => other.pool === key.pool && other.vid === key.vid);
      if (earlier !== undefined) {
        if (earlier.name === attachment.name && earlier.rw === attachment.rw && earlier.order === attachment.order) return this.volumes.get(key);
        throw volumeAttached(key.vid, vm.name, earlier.name);
      }
      if (volume.vmQid === vm.qid) throw volumeOwned(vm.name, volume.name);
      this.checkNameFree(vm, attachment.name);
      this.checkSharing(vm, volume, attachment.rw);
      // The storage daemon holds an exported volume's image: a running VM may not open it meanwhile.
      refuseExported(this.store, volume);
      if (this.running.isRunning(vm)) await this.running.hotPlug(vm).attachDisk(this.disk(attachment, volume));
      this.store.transaction(() => {
        const now = this.ready(key);
        this.store.attachments.insert(attachment);
        this.events.append(volumeAttach(vm, now, attachment.name, attachment.rw, attachment.order));
      });
      return this.volumes.get(key);
    });
  }

  /** Detaches the VM's disk of that name; none is NOT_FOUND (VOLUME_NOT_ATTACHED) unless allowMissing. */
  async detach(vmName: string, name: string, allowMissing: boolean, ctx: CallContext): Promise<void> {
    if (name === "") throw invalidDiskName("name", "is required: the disk's name in the VM");
    await this.vmOperations.on(vmName, "vm", ctx, "detach a volume from it", async (vm) => {
      const attachment = this.store.attachments.ofVm(vm.qid).find((candidate) => candidate.name === name);
      if (attachment === undefined) {
        if (this.store.volumes.ofVm(vm.qid).some((own) => own.name === name)) throw volumeOwned(vm.name, name);
        if (allowMissing) return;
        throw volumeNotAttached(vm.name, name);
      }
      if (this.running.isRunning(vm)) await this.running.hotPlug(vm).detachDisk(name);
      this.store.transaction(() => {
        this.store.attachments.remove(vm.qid, name);
        this.events.append(volumeDetach(vm, attachment, name));
      });
    });
  }

  /** The VM's attached volumes as disks of its launch, after its own, in their order. */
  disksOf(vm: VmRecord): LaunchDisk[] {
    return this.store.attachments.ofVm(vm.qid).map((attachment) => this.disk(attachment, this.ready(attachment)));
  }

  /** The volumes attached to a VM, each ready. */
  volumesOf(vm: VmRecord): VolumeRecord[] {
    return this.store.attachments.ofVm(vm.qid).map((attachment) => this.ready(attachment));
  }

  private disk(attachment: VolumeAttachmentRecord, volume: VolumeRecord): LaunchDisk {
    const driver = this.pools.driver(volume.pool);
    return { name: attachment.name, path: driver.hostPath(volume.vid) ?? "", format: driver.format, readOnly: !attachment.rw || !volume.rw };
  }

  private checkNameFree(vm: VmRecord, name: string): void {
    const own = this.store.volumes.ofVm(vm.qid).some((volume) => volume.name === name);
    if (own || this.store.attachments.ofVm(vm.qid).some((other) => other.name === name)) throw diskNameTaken(vm.name, name);
  }

  /** One writer at most: refuses a writable attachment of a volume another VM uses, and any of one another VM writes. */
  private checkSharing(vm: VmRecord, volume: VolumeRecord, rw: boolean): void {
    const others = this.store.attachments.ofVolume(volume.pool, volume.vid).filter((other) => other.vmQid !== vm.qid);
    const writers = others.filter((other) => other.rw).map((other) => this.store.vms.byQid(other.vmQid)?.name ?? String(other.vmQid));
    if (writers.length > 0) throw volumeInUse(volume.vid, `${writers.join(", ")} has it attached writable`, writers);
    if (!rw) return;
    const users = attachedVmNames(this.store, volume, vm.qid);
    if (users.length > 0) throw volumeInUse(volume.vid, `${users.join(", ")} has it attached, so it is attached read-only or not at all`, users);
    const owner = volume.vmQid === undefined ? undefined : this.store.vms.byQid(volume.vmQid);
    if (owner !== undefined) throw volumeInUse(volume.vid, `it is ${owner.name}'s own volume ${volume.name}, which ${owner.name} writes: attach it read-only`, [owner.name]);
  }

  private ready({ pool, vid }: { pool: string; vid: string }): VolumeRecord {
    const volume = this.store.volumes.get(pool, vid);
    if (!volume || volume.state !== "ready") throw volumeNotFound(vid);
    return volume;
  }
}

function checkDiskName(name: string, field: string): void {
  if (!DISK_NAME.test(name)) throw invalidDiskName(field, `${JSON.stringify(name)} is not a disk name: a lowercase letter, then lowercase letters, digits, "_" or "-", 32 at most`);
  if (OWN_DISK_NAMES.includes(name)) throw invalidDiskName(field, `${name} is the name of a VM's own volume`);
}
