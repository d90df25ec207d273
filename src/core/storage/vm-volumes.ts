import { canCloneCheaply, encryptsEphemeral, transfersImages, type StorageDriver } from "../../ports/storage-driver";
import type { Clock } from "../../ports/clock";
import type { Store } from "../../ports/store";
import type { LaunchDisk, LaunchPlan } from "../model/launch-plan";
import type { VmClassName } from "../model/vm-classes";
import type { VmRecord } from "../model/vm-record";
import type { VolumeFormat, VolumeRecord } from "../model/volume";
import type { CallContext } from "../shared/call-context";
import type { ProgressReporter } from "../shared/progress";
import type { Undo } from "../shared/revert";
import { globalSpec } from "../vms/properties/property-schema";
import type { PropertyResolver } from "../vms/properties/property-resolver";
import type { HaltReport, NewVolumeContent, VmParticipant, VolumePlacement } from "../vms/vm-participant";
import { InvalidFieldError } from "../errors";
import type { ImageFile, ImageFolder } from "../../ports/image-folder";
import type { Pools } from "./pools";
import { ephemeralUnsupported, volumeInUse } from "./storage-errors";
import { attachedVmNames } from "./attached-vms";
import type { KernelVolumes } from "./kernel-volumes";
import type { VolumeAttachments } from "./volume-attachments";
import { copyContent, emptyContent } from "./volume-copy";
import { isRemadeAtEachStart, NEW_VOLUME_BYTES } from "./made-at-start";
import { checkSha256, newVolumeRecord, parseVolumeSource, refuseExported, SECTOR, type ImportHeader, type Volumes } from "./volumes";

/** An image's bytes are read in chunks of this, as an import stream brings them. */
const IMAGE_CHUNK_BYTES = 1024 * 1024;
/** The first bytes of a qcow2 image: "QFI\xfb". */
const QCOW2_MAGIC = [0x51, 0x46, 0x49, 0xfb];

function isQcow2(head: Uint8Array): boolean {
  return QCOW2_MAGIC.every((byte, index) => head[index] === byte);
}

/** What a volume of a VM's class is (Qubes' volume_config). */
interface VolumeSpec {
  name: "root" | "private" | "volatile";
  /** The size of a new volume of its own. */
  sizeBytes: number;
  snapOnStart: boolean;
  saveOnStop: boolean;
  /** For a snapshot taken at each start: whose volume of which name it is a snapshot of. */
  source?: { of: "template"; volume: "root" | "private" } | { of: "template's source"; volume: "root" };
}

const OWN_ROOT: VolumeSpec = { name: "root", sizeBytes: NEW_VOLUME_BYTES.root, snapOnStart: false, saveOnStop: true };
const OWN_PRIVATE: VolumeSpec = { name: "private", sizeBytes: NEW_VOLUME_BYTES.private, snapOnStart: false, saveOnStop: true };
/** Fresh at each start: swap and scratch space. */
const VOLATILE: VolumeSpec = { name: "volatile", sizeBytes: NEW_VOLUME_BYTES.volatile, snapOnStart: false, saveOnStop: false };

/**
 * Qubes' table of volumes per class. An AppVM's root is a snapshot of its template's root taken
 * at each start; a DispVM's root is the same of its AppVM's template's root, and its private a
 * snapshot of its AppVM's private; a TemplateVM and a StandaloneVM own all theirs. The kernel
 * volume is no volume of the VM's own: the modules of the kernel it boots, from the host's
 * kernel folder (KernelVolumes).
 */
const LAYOUT: Record<VmClassName, readonly VolumeSpec[]> = {
  AdminVM: [],
  TemplateVM: [OWN_ROOT, OWN_PRIVATE, VOLATILE],
  StandaloneVM: [OWN_ROOT, OWN_PRIVATE, VOLATILE],
  AppVM: [{ ...OWN_ROOT, snapOnStart: true, saveOnStop: false, source: { of: "template", volume: "root" } }, OWN_PRIVATE, VOLATILE],
  DispVM: [
    { ...OWN_ROOT, snapOnStart: true, saveOnStop: false, source: { of: "template's source", volume: "root" } },
    { ...OWN_PRIVATE, snapOnStart: true, saveOnStop: false, source: { of: "template", volume: "private" } },
    VOLATILE,
  ],
};

/** A volume of a new VM, before it is made: where it goes, and how its bytes are made. */
interface PlannedVolume {
  spec: VolumeSpec;
  pool: string;
  source: string;
  /** The most bytes it may take, counted against its pool's limit; and what making it writes now. */
  neededBytes: number;
  writtenBytes: number;
  bytes: (driver: StorageDriver, vid: string) => Promise<void>;
}

/**
 * The byte copies of a clone, told as one progress: bytes done of them all, each copy's own
 * progress added to what the copies before it did.
 */
class ByteCopies {
  private totalBytes = 0;

  constructor(private readonly copied: ProgressReporter) {}

  /** A copy of `sizeBytes` to come: the progress its copy reports to. */
  add(sizeBytes: number): (doneBytes: number) => void {
    const before = this.totalBytes;
    this.totalBytes += sizeBytes;
    return (doneBytes) => this.copied(before + doneBytes, this.totalBytes);
  }
}

/** A pool's volume a VM being made takes as its own, held (Volumes.holdForAdoption) until it is stored or given up. */
interface Adoption {
  name: VolumeSpec["name"];
  key: { pool: string; vid: string };
  field: string;
  release: () => void;
}

/** The order the guest sees a VM's own disks in. */
const DISK_ORDER = ["root", "private", "volatile", "kernel"];

/** A volume's source as the record keeps it: "pool:vid". */
function sourceKey(volume: VolumeRecord): string {
  return `${volume.pool}:${volume.vid}`;
}


/**
 * The storage area's part in a VM's life: its volumes are made with it (CreateVm, CloneVm),
 * refreshed as Qubes does at each start (snap_on_start volumes from their source, volatile
 * fresh), settled at each halt (save_on_stop volumes keep a revision, the others are emptied),
 * and deleted with it.
 */
export class VmVolumes implements VmParticipant {
  readonly name = "storage";

  constructor(
    private readonly store: Store,
    private readonly pools: Pools,
    private readonly volumes: Volumes,
    private readonly resolver: PropertyResolver,
    private readonly clock: Clock,
    private readonly attachments: VolumeAttachments,
    private readonly images: ImageFolder,
    private readonly kernels: KernelVolumes,
  ) {}

  /** The volumes made for VMs being made, by qid: ready once their VM is stored (onCommit). */
  private readonly made = new Map<number, VolumeRecord[]>();
  /** The pools' volumes that VMs being made take as theirs, by qid: theirs once the VM is stored. */
  private readonly adopted = new Map<number, Adoption[]>();

  /**
   * Refuses what the new VM's class does not take: a content for a volume it has not, or for one
   * a start makes anew (a snapshot of its template's, or volatile); an existing volume that is
   * not free to take, or named twice; an image that is not in the images folder.
   */
  async checkCreate(vm: VmRecord, placement: VolumePlacement, images: "open" | "opened later" = "open"): Promise<void> {
    const taken = new Set<string>();
    for (const [name, content] of Object.entries(placement.contents ?? {})) {
      const field = `volumes[${name}]`;
      const spec = LAYOUT[vm.klass].find((candidate) => candidate.name === name);
      if (spec === undefined) throw new InvalidFieldError(field, `a ${vm.klass} has no ${name} volume of its own: its volumes are ${LAYOUT[vm.klass].map((own) => own.name).join(", ")}`);
      if (spec.source !== undefined) throw new InvalidFieldError(field, `a ${vm.klass}'s ${name} is a snapshot of its template's ${spec.source.volume}, taken at each start: it is made from nothing else`);
      if (!spec.saveOnStop) throw new InvalidFieldError(field, `${name} is made fresh at each start: it is made from nothing else`);
      if (content.kind === "existing") {
        const volume = this.volumes.adoptable(content, `${field}.existing`);
        const key = `${volume.pool}/${volume.vid}`;
        if (taken.has(key)) throw new InvalidFieldError(`${field}.existing`, `${volume.vid} is named for two volumes: a volume is one VM's one volume`);
        taken.add(key);
      } else if (content.kind === "image") {
        checkSha256(content.sha256, `${field}.image.sha256`);
        if (images === "open") await this.checkImage(content, `${field}.image`, this.poolFor(name, placement));
      }
    }
  }

  async onCreate(vm: VmRecord, ctx: CallContext, placement: VolumePlacement, copied: ProgressReporter): Promise<Undo | void> {
    // Checked again: a volume taken since the call's check (the images are opened below).
    await this.checkCreate(vm, placement, "opened later");
    const contents = placement.contents ?? {};
    const planned: PlannedVolume[] = [];
    const adopted: Adoption[] = [];
    const imports = new ByteCopies(copied);
    const opened: ImageFile[] = [];
    try {
      for (const spec of LAYOUT[vm.klass]) {
        const content = contents[spec.name];
        if (content?.kind === "existing") {
          const key = { pool: content.pool, vid: content.vid };
          const field = `volumes[${spec.name}].existing`;
          adopted.push({ name: spec.name, key, field, release: this.volumes.holdForAdoption(key, field) });
          continue;
        }
        const pool = this.poolFor(spec.name, placement);
        if (content !== undefined) {
          planned.push(await this.imported(spec, pool, content, ctx, imports, opened));
          continue;
        }
        const source = spec.source === undefined ? undefined : this.sourceOf(vm, spec);
        planned.push({
          spec,
          pool,
          source: source === undefined ? "" : sourceKey(source),
          // A volume of its own may be filled by the VM; a snapshot's bytes are its start's to count.
          neededBytes: source === undefined ? spec.sizeBytes : 0,
          writtenBytes: 0,
          // What each start makes anew gets its file then (Volumes.makeIfAbsent), as in Qubes' file-reflink.
          bytes: isRemadeAtEachStart(spec) ? async () => undefined : (driver, vid) => driver.create(vid, spec.sizeBytes),
        });
      }
      const undo = await this.makeAll(vm, planned);
      if (adopted.length > 0) this.adopted.set(vm.qid, adopted);
      return async () => {
        this.adopted.delete(vm.qid);
        adopted.forEach((adoption) => adoption.release());
        await undo?.();
      };
    } catch (error) {
      adopted.forEach((adoption) => adoption.release());
      throw error;
    } finally {
      await Promise.all(opened.map((image) => image.close()));
    }
  }

  /**
   * A volume of a new VM made from an import stream or an image: empty first, then filled as
   * ImportVolume fills one, the bytes received told to `imports`. An image is opened now, so
   * that one missing is refused before any volume is made.
   */
  private async imported(spec: VolumeSpec, pool: string, content: Exclude<NewVolumeContent, { kind: "existing" }>, ctx: CallContext, imports: ByteCopies, opened: ImageFile[]): Promise<PlannedVolume> {
    let header: ImportHeader;
    let chunks: AsyncIterable<Uint8Array>;
    let received: (received: { bytesReceived: number; sha256: string }) => void = () => undefined;
    if (content.kind === "stream") {
      ({ chunks } = content);
      received = content.received ?? received;
      header = { sizeBytes: content.sizeBytes, sha256: content.sha256, format: content.format };
    } else {
      const { image, format } = await this.openImage(content, `volumes[${spec.name}].image`);
      opened.push(image);
      const field = `volumes[${spec.name}].image`;
      header = { sizeBytes: image.sizeBytes, sha256: content.sha256, format, fields: { format: content.format === undefined ? `${field}.file` : `${field}.format`, size: `${field}.file` } };
      chunks = image.chunks(IMAGE_CHUNK_BYTES);
    }
    const told = imports.add(header.sizeBytes);
    return {
      spec,
      pool,
      source: "",
      // The import counts what it writes, as ImportVolume does.
      neededBytes: 0,
      writtenBytes: 0,
      bytes: async (driver, vid) => {
        await driver.create(vid, 0);
        received(await this.volumes.fillNew({ pool, vid }, header, chunks, ctx, told));
      },
    };
  }

  /** Refuses an image that is not in the images folder, or a qcow2 image for a pool that takes raw bytes only. */
  private async checkImage(content: Extract<NewVolumeContent, { kind: "image" }>, field: string, pool: string): Promise<void> {
    const { image, format } = await this.openImage(content, field);
    await image.close();
    const driver = this.store.pools.get(pool) === undefined ? undefined : this.driverOf(pool);
    if (format === "qcow2" && driver !== undefined && !transfersImages(driver)) {
      throw new InvalidFieldError(content.format === undefined ? `${field}.file` : `${field}.format`, `${content.file} is a qcow2 image, and pool ${pool} takes raw bytes only`);
    }
  }

  /** Opens an image of the images folder, with its format: the one asked, else qcow2 when its first bytes say so, else raw. */
  private async openImage(content: Extract<NewVolumeContent, { kind: "image" }>, field: string): Promise<{ image: ImageFile; format: VolumeFormat }> {
    const image = await this.images.open(content.file, `${field}.file`);
    try {
      const format = content.format ?? (isQcow2(await image.head(QCOW2_MAGIC.length)) ? "qcow2" : "raw");
      if (image.sizeBytes === 0) throw new InvalidFieldError(`${field}.file`, `${content.file} is empty`);
      if (format === "raw" && image.sizeBytes % SECTOR !== 0) throw new InvalidFieldError(`${field}.file`, `${content.file} is ${image.sizeBytes} bytes: a raw image is whole sectors of ${SECTOR} bytes`);
      return { image, format };
    } catch (error) {
      await image.close();
      throw error;
    }
  }

  /**
   * Copies the source's volumes: cheaply where the clone's pool is the original's and its driver
   * can, else byte by byte, telling `copied` the bytes done of all those copies.
   */
  async onClone(source: VmRecord, clone: VmRecord, ctx: CallContext, placement: VolumePlacement, copied: ProgressReporter): Promise<Undo | void> {
    const planned: PlannedVolume[] = [];
    const copies = new ByteCopies(copied);
    for (const original of this.ownVolumes(source)) {
      const spec = LAYOUT[clone.klass].find((candidate) => candidate.name === original.name);
      if (spec === undefined) continue;
      const pool = this.poolFor(spec.name, placement, original.pool);
      const sourceDriver = this.driverOf(original.pool);
      const { sizeBytes, allocatedBytes, made } = await this.volumes.usage(original);
      // What a start makes again needs no copy; the rest is copied, cheaply where the pool can.
      const remade = isRemadeAtEachStart(original);
      const cheap = !remade && pool === original.pool && canCloneCheaply(this.driverOf(pool));
      const copy = remade || cheap ? undefined : copies.add(sizeBytes);
      planned.push({
        spec: { ...spec, snapOnStart: original.snapOnStart, saveOnStop: original.saveOnStop },
        pool,
        source: original.source,
        // As a new VM's: a volume of its own counts its size, a snapshot taken at each start nothing.
        neededBytes: original.snapOnStart || cheap ? 0 : remade ? sizeBytes : allocatedBytes,
        writtenBytes: remade || cheap ? 0 : allocatedBytes,
        bytes: async (driver, vid) => {
          // One that no start made yet is made by the clone's first start, of the size it has then.
          if (remade) return made ? driver.create(vid, sizeBytes) : undefined;
          if (cheap && canCloneCheaply(driver)) return driver.clone(original.vid, vid);
          await driver.create(vid, sizeBytes);
          await copyContent(sourceDriver, original.vid, driver, vid, { signal: ctx.signal, progress: copy });
        },
      });
    }
    return this.makeAll(clone, planned, placement.readOnly === true);
  }

  /** Refreshes what each start makes anew, and adds the VM's disks to its plan in their order. */
  async beforeStart(vm: VmRecord, plan: LaunchPlan): Promise<void> {
    const disks: LaunchDisk[] = [];
    // The storage daemon holds an exported volume's image (and its lock): the VM may not open it meanwhile.
    for (const volume of [...this.ownVolumes(vm), ...this.attachments.volumesOf(vm)]) refuseExported(this.store, volume);
    for (const volume of this.ownVolumes(vm).sort((a, b) => DISK_ORDER.indexOf(a.name) - DISK_ORDER.indexOf(b.name))) {
      // The drop of old revisions a halt queued is done before the VM (or a copy) opens the images.
      await this.volumes.settled(volume);
      const driver = this.driverOf(volume.pool);
      const disk: LaunchDisk = { name: volume.name, path: driver.hostPath(volume.vid) ?? "", format: driver.format, readOnly: !volume.rw };
      if (volume.snapOnStart) await this.snapshotFromSource(this.withCurrentSource(vm, volume), driver);
      else if (!volume.saveOnStop && this.isEphemeral(volume)) Object.assign(disk, await this.encrypted(volume, driver));
      // Made now, it is empty already.
      else if (!volume.saveOnStop && !(await this.volumes.makeIfAbsent(volume))) await emptyContent(driver, volume.vid);
      disks.push(await withBacking(disk, driver, volume.vid));
    }
    // Another VM's volume attached here may be one its own start makes: its file is made for this launch.
    for (const attached of this.attachments.volumesOf(vm)) await this.volumes.makeIfAbsent(attached);
    // A kernel of the host's folder brings its modules, as Qubes' kernel volume; a volume of the VM's own named kernel comes first.
    const kernel = plan.kernel === "" || disks.some((disk) => disk.name === "kernel") ? undefined : await this.kernels.disk(plan.kernel);
    if (kernel !== undefined) disks.push(kernel);
    const attached = this.attachments.volumesOf(vm);
    const attachedDisks = await Promise.all(this.attachments.disksOf(vm).map((disk, at) => withBacking(disk, this.driverOf(attached[at].pool), attached[at].vid)));
    plan.disks.push(...disks, ...attachedDisks);
  }

  /**
   * Whether a volume is encrypted with a key of its VM's run: its own ephemeral, or, for a
   * volatile volume, its pool's ephemeral_volatile (Qubes' default for it).
   */
  private isEphemeral(volume: VolumeRecord): boolean {
    return volume.ephemeral || (volume.name === "volatile" && this.store.pools.get(volume.pool)?.ephemeralVolatile === true);
  }

  /** A fresh encrypted content for an ephemeral volume: its format and key go to the launch alone. */
  private async encrypted(volume: VolumeRecord, driver: StorageDriver): Promise<Pick<LaunchDisk, "format" | "key">> {
    if (!encryptsEphemeral(driver)) throw ephemeralUnsupported(volume.pool, volume.vid);
    await this.volumes.makeIfAbsent(volume);
    return driver.makeEphemeral(volume.vid);
  }

  /** Keeps a revision of what is saved at a stop; empties what is not, so that it takes no space until the next start. */
  async afterHalt(vm: VmRecord, _halt: HaltReport, ctx: CallContext): Promise<void> {
    // One volume that cannot be settled (its revision past the pool's limit) leaves the others to be.
    let failure: Error | undefined;
    for (const volume of this.ownVolumes(vm)) {
      try {
        if (volume.saveOnStop && !volume.snapOnStart) await this.volumes.snapshot({ pool: volume.pool, vid: volume.vid }, ctx);
        // One that the start did not get to make has nothing to empty.
        else if ((await this.volumes.usage(volume)).made) await emptyContent(this.driverOf(volume.pool), volume.vid);
      } catch (error) {
        failure ??= error instanceof Error ? error : new Error(String(error));
      }
    }
    if (failure !== undefined) throw failure;
  }

  /** Marks the VM's volumes as going: they are not listed any more, and a refused removal brings them back. */
  async onRemove(vm: VmRecord): Promise<Undo | void> {
    const volumes = this.ownVolumes(vm);
    if (volumes.length === 0) return undefined;
    for (const volume of volumes) {
      const users = attachedVmNames(this.store, volume);
      if (users.length > 0) throw volumeInUse(volume.vid, `${vm.name}'s volume ${volume.name} is attached to ${users.join(", ")}: detach it first`, users);
      refuseExported(this.store, volume);
    }
    this.store.transaction(() => {
      for (const volume of volumes) this.store.volumes.update({ ...volume, state: "deleting" });
    });
    return async () => {
      this.store.transaction(() => {
        for (const volume of volumes) this.store.volumes.update(volume);
      });
    };
  }

  /**
   * The VM is gone: its volumes go (a stop midway is finished at the next start). Its
   * domain-delete tells of them, as its domain-add told of their making.
   */
  async afterRemove(vm: VmRecord): Promise<void> {
    await this.deleteAll(this.store.volumes.ofVm(vm.qid));
  }

  /**
   * Makes the volumes of a new VM: their records first, all in one transaction (creating: a
   * start after a crash removes them), then their bytes, all at once; the records are ready
   * once the VM is stored. A failure removes what was made, and the undo returned does the same.
   */
  private async makeAll(vm: VmRecord, planned: readonly PlannedVolume[], readOnly = false): Promise<Undo | void> {
    if (planned.length === 0) return undefined;
    const records = planned.map(({ spec, pool, source }) =>
      newVolumeRecord(
        { pool, vid: `vms/${vm.uuid}/${spec.name}`, format: this.pools.driver(pool).format, vmQid: vm.qid, name: spec.name, snapOnStart: spec.snapOnStart, saveOnStop: spec.saveOnStop, source, rw: !readOnly },
        this.clock.now(),
      ),
    );
    this.store.transaction(() => records.forEach((record) => this.store.volumes.insert(record)));
    // All at once: each is a file of its own. One that fails waits for the others, and all go.
    const outcomes = await Promise.allSettled(
      records.map((record, index) => {
        const { neededBytes, writtenBytes, bytes } = planned[index];
        return this.pools.withRoom(record.pool, neededBytes, () => bytes(this.pools.driver(record.pool), record.vid), writtenBytes);
      }),
    );
    const failure = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === "rejected");
    if (failure !== undefined) {
      await this.deleteAll(records);
      throw failure.reason;
    }
    // Ready with their VM, in the transaction that stores it (onCommit): a crash before leaves them creating, for the sweep.
    this.made.set(vm.qid, records);
    return async () => {
      this.made.delete(vm.qid);
      await this.deleteAll(records);
    };
  }

  /** The new VM is being stored: the volumes made for it are ready, and those it takes are its own. */
  onCommit(vm: VmRecord): void {
    const made = this.made.get(vm.qid) ?? [];
    const adoptions = this.adopted.get(vm.qid) ?? [];
    const adopted = adoptions.map(({ name, key, field }) => ({ name, volume: this.volumes.adoptable(key, field, { held: true }) }));
    this.made.delete(vm.qid);
    this.adopted.delete(vm.qid);
    // Held until now: once the VM is stored, its volume's changes wait for the VM as any of its volumes' do.
    adoptions.forEach((adoption) => adoption.release());
    for (const record of made) this.store.volumes.update({ ...record, state: "ready" });
    for (const { name, volume } of adopted) {
      // A root or private of its own: writable, saved at each stop, never ephemeral.
      this.store.volumes.update({ ...volume, vmQid: vm.qid, name, rw: true, ephemeral: false, snapOnStart: false, saveOnStop: true, source: "", sourceStamp: "" });
    }
  }

  /** Deletes the volumes' bytes (those there are), then their records, in one transaction. */
  private async deleteAll(volumes: readonly VolumeRecord[]): Promise<void> {
    for (const volume of volumes) await this.driverOf(volume.pool).delete(volume.vid);
    this.store.transaction(() => volumes.forEach((volume) => this.store.volumes.remove(volume.pool, volume.vid)));
  }

  /**
   * The volume with the source its VM's template gives it now: a template changed while the VM
   * was halted is the one its next start snapshots (the record follows).
   */
  private withCurrentSource(vm: VmRecord, volume: VolumeRecord): VolumeRecord {
    const spec = LAYOUT[vm.klass].find((candidate) => candidate.name === volume.name);
    const source = spec?.source === undefined ? undefined : this.sourceOf(vm, spec);
    if (source === undefined || sourceKey(source) === volume.source) return volume;
    const changed = { ...volume, source: sourceKey(source) };
    this.store.transaction(() => this.store.volumes.update(changed));
    return changed;
  }

  /**
   * Makes a snap_on_start volume its source's content as it is now: a reflink or overlay where
   * the pool can, else a copy; the record keeps the source's stamp, to tell when it is outdated.
   */
  private async snapshotFromSource(volume: VolumeRecord, driver: StorageDriver): Promise<void> {
    if (volume.source === "") {
      await this.volumes.makeIfAbsent(volume);
      return;
    }
    const source = parseVolumeSource(volume.source);
    await this.volumes.settled(source);
    const sourceDriver = this.driverOf(source.pool);
    const { allocatedBytes, stamp } = await sourceDriver.volumeUsage(source.vid);
    if (source.pool === volume.pool && canCloneCheaply(driver)) await driver.clone(source.vid, volume.vid);
    else {
      // A copy goes through the target's writer: its file is made first, the first time.
      await this.volumes.makeIfAbsent(volume);
      await this.pools.withRoom(volume.pool, allocatedBytes, () => copyContent(sourceDriver, source.vid, driver, volume.vid));
    }
    if (stamp !== volume.sourceStamp) this.store.transaction(() => this.store.volumes.update({ ...volume, sourceStamp: stamp }));
  }

  /** The volume a snap_on_start volume of `vm` is a snapshot of. */
  private sourceOf(vm: VmRecord, spec: VolumeSpec): VolumeRecord | undefined {
    const template = this.templateOf(vm);
    if (template === undefined || spec.source === undefined) return undefined;
    const volume = this.ownVolumes(template).find((candidate) => candidate.name === spec.source!.volume);
    if (spec.source.of === "template") return volume;
    // A DispVM's root is its AppVM's root's source: the TemplateVM's root.
    if (volume === undefined || volume.source === "") return volume;
    const { pool, vid } = parseVolumeSource(volume.source);
    return this.store.volumes.get(pool, vid);
  }

  private templateOf(vm: VmRecord): VmRecord | undefined {
    const qid = vm.properties.template;
    return qid === undefined ? undefined : this.store.vms.byQid(Number(qid));
  }

  private ownVolumes(vm: VmRecord): VolumeRecord[] {
    return this.store.volumes.ofVm(vm.qid).filter((volume) => volume.state === "ready");
  }

  /** The pool a new volume goes to: the one asked for it, or for all, or what the clone's original used, or the global default_pool_<volume>. */
  private poolFor(volume: string, placement: VolumePlacement, original?: string): string {
    const asked = placement.volumePools[volume] || placement.pool || original;
    if (asked) return asked;
    const fallback = this.resolver.global(globalSpec(`default_pool_${volume}`)).value;
    return typeof fallback === "string" ? fallback : "";
  }

  private driverOf(pool: string): StorageDriver {
    return this.pools.driver(pool);
  }
}

/** The disk with the images under its own, where its driver's images chain (an encrypted ephemeral disk is made anew, with none). */
async function withBacking(disk: LaunchDisk, driver: StorageDriver, vid: string): Promise<LaunchDisk> {
  if (disk.key !== undefined || !driver.backingChain) return disk;
  const backing = await driver.backingChain(vid);
  return backing.length === 0 ? disk : { ...disk, backing };
}
