/** The store port: the durable state of the host. */
import type { StoredEvent, NewEvent } from "../core/model/event";
import type { BlockExportRecord, NbdServerRecord } from "../core/model/block-export";
import type { HostRecord } from "../core/model/host";
import type { LabelRecord } from "../core/model/label";
import type { PoolRecord } from "../core/model/pool";
import type { VolumeAttachmentRecord, VolumeRecord } from "../core/model/volume";
import type { OperationFilter, OperationPosition, OperationRecord } from "../core/model/operation";
import type { VmFilter, VmRecord } from "../core/model/vm-record";

export interface VmRepository {
  byQid(qid: number): VmRecord | undefined;
  byName(name: string): VmRecord | undefined;
  /** The VM whose name is `name` but for the case of its letters (ASCII), if any. */
  byNameAnyCase(name: string): VmRecord | undefined;
  byUuid(uuid: string): VmRecord | undefined;
  /** VMs matching the filter, by name, after `afterName`, at most `limit`. */
  list(filter: VmFilter, afterName: string, limit: number): VmRecord[];
  count(filter: VmFilter): number;
  /**
   * A qid not in use, from 1 (0 is dom0): one past the highest while there is room, so that a
   * removed VM's qid (and the addresses made from it) is not handed out again at once; else
   * the lowest one free. `skip` passes over qids the caller holds for itself (VMs being made).
   * RESOURCE_EXHAUSTED (NO_FREE_QID) when every qid is taken or skipped.
   */
  nextQid(skip?: (qid: number) => boolean): number;
  insert(vm: Omit<VmRecord, "tags" | "properties" | "revision" | "updatedAt">): void;
  remove(qid: number): void;
  setProperty(qid: number, name: string, value: string): void;
  /** Forgets a set property, so that its default applies; false when it was not set. */
  deleteProperty(qid: number, name: string): boolean;
  /** Every VM, by qid; for checks that span the host (unique addresses, netvm users). */
  all(): VmRecord[];
  /** Adds a tag; false when the VM had it already. */
  addTag(qid: number, tag: string): boolean;
  /** Removes a tag; false when the VM did not have it. */
  removeTag(qid: number, tag: string): boolean;
  rename(qid: number, name: string): void;
  features(qid: number): Record<string, string>;
  /** The features of many VMs at once, by qid. */
  featuresOf(qids: readonly number[]): Map<number, Record<string, string>>;
  setFeature(qid: number, name: string, value: string): void;
  /** Removes a feature; false when it was not set. */
  removeFeature(qid: number, name: string): boolean;
  notes(qid: number): string;
  setNotes(qid: number, notes: string): void;
  /** Whether some VM sets property `name` to `value` (an address, say). */
  anySets(name: string, value: string): boolean;
  /** VMs one of whose properties names the VM `qid` (template, netvm, default_dispvm…). */
  referencesTo(qid: number, vmProperties: readonly string[]): { vm: string; property: string }[];
  /** Names of the VMs whose label is `label`. */
  withLabel(label: string): string[];
}

/** Global properties explicitly set, as their stored text. */
export interface GlobalPropertyRepository {
  all(): Record<string, string>;
  set(name: string, value: string): void;
  delete(name: string): boolean;
}

export interface LabelRepository {
  list(): LabelRecord[];
  get(name: string): LabelRecord | undefined;
  insert(label: LabelRecord): void;
  remove(name: string): void;
  nextIndex(): number;
}

export interface EventRepository {
  /** Appends an event with the next sequence number, within the current transaction. */
  append(event: NewEvent, time: Date): number;
  /** The sequence number of the latest event; 0 when there has been none. */
  latestSequence(): number;
  /** The sequence number of the oldest event kept; latestSequence() + 1 when none is kept. */
  oldestSequence(): number;
  /** Up to `limit` events after `sequence`, in order. */
  after(sequence: number, limit: number): StoredEvent[];
  /**
   * The uuid of the VM that the retained events last knew by the name `subject`, up to the
   * event `upTo` when given: the VM that had the name then.
   */
  uuidOfSubject(subject: string, upTo?: number): string | undefined;
  /** Whether any retained event is about `subject` (a DispVM name is not reused while one is). */
  namesSubject(subject: string): boolean;
  /** Whether any retained event is about the VM of this uuid. */
  namesUuid(uuid: string): boolean;
  /** Drops all but the latest `keep` events. */
  trim(keep: number): void;
}

/** A retry-safe request (by its request_id): what it asked, and what it produced the first time. */
export interface RememberedRequest {
  rpc: string;
  /** What it asked, as the core wrote it down; empty for a request remembered before that. */
  request: string;
  result: string;
  time: Date;
}

export interface RequestRepository {
  find(requestId: string): RememberedRequest | undefined;
  remember(requestId: string, remembered: RememberedRequest): void;
  /** Forgets the requests remembered before `time`. */
  forgetBefore(time: Date): void;
}

/**
 * Which VMs run, as Steward last knew, and which halted but are not settled yet: kept across
 * restarts, so that a Steward that starts again can tell the VMs its driver hands over from those
 * that ended while no Steward ran, and settle those (and finish settling the ones it was
 * settling when it stopped).
 */
export interface RuntimeRepository {
  /** The VMs marked, by qid: when they started, and whether they halted and wait to be settled. */
  running(): { qid: number; startedAt: Date; settling: boolean }[];
  markRunning(qid: number, startedAt: Date): void;
  /** The VM halted: it is settled next. Within the transaction that tells of the halt. */
  markSettling(qid: number): void;
  /** The VM is settled: the mark goes; nothing when there was none. */
  markHalted(qid: number): void;
}

/** Operations (AIP-151): running ones, and those that ended and are still kept. */
export interface OperationRepository {
  get(name: string): OperationRecord | undefined;
  /** Inserts a new operation, or writes an existing one's progress, outcome and result. */
  put(operation: OperationRecord): void;
  /**
   * Operations matching the filter, the newest first (by creation, then name), after the
   * position `after` (undefined from the start), at most `limit`.
   */
  list(filter: OperationFilter, after: OperationPosition | undefined, limit: number): OperationRecord[];
  /** Forgets an operation; false when there was none. */
  delete(name: string): boolean;
  /** Forgets the operations that ended before `time`; running ones are kept. */
  forgetEndedBefore(time: Date): void;
}

export interface PoolRepository {
  /** Every pool, by name. */
  list(): PoolRecord[];
  get(name: string): PoolRecord | undefined;
  insert(pool: PoolRecord): void;
  remove(name: string): void;
  /** Writes the settings a pool may change after it was added. */
  update(name: string, settings: Pick<PoolRecord, "revisionsToKeep" | "ephemeralVolatile" | "limitBytes">): void;
}

export interface VolumeRepository {
  get(pool: string, vid: string): VolumeRecord | undefined;
  /** A pool's volumes by vid, after `afterVid`, at most `limit`. */
  inPool(pool: string, afterVid: string, limit: number): VolumeRecord[];
  countInPool(pool: string): number;
  /** The volumes a VM owns, by name. */
  ofVm(qid: number): VolumeRecord[];
  /** Volumes in a state other than ready: changes a crash cut short. */
  unsettled(): VolumeRecord[];
  /** Volumes of VMs that do not exist: made for a VM whose making a crash cut short. */
  ofMissingVms(): VolumeRecord[];
  insert(volume: VolumeRecord): void;
  /** Writes every field but the pool and vid, which name it. */
  update(volume: VolumeRecord): void;
  remove(pool: string, vid: string): void;
}

/** The volumes attached to VMs as extra disks; an attachment goes with its VM and with its volume. */
export interface VolumeAttachmentRepository {
  /** A VM's attachments, in the order its guest sees them: by order, then name. */
  ofVm(qid: number): VolumeAttachmentRecord[];
  /** The VMs a volume is attached to, by qid. */
  ofVolume(pool: string, vid: string): VolumeAttachmentRecord[];
  insert(attachment: VolumeAttachmentRecord): void;
  remove(vmQid: number, name: string): void;
}

/** The host's NBD server and its block exports, as the requests set them up. */
export interface BlockExportRepository {
  nbdServer(): NbdServerRecord | undefined;
  /** Sets the server, or forgets it (undefined). */
  setNbdServer(server: NbdServerRecord | undefined): void;
  /** Every export, by id. */
  list(): BlockExportRecord[];
  get(id: string): BlockExportRecord | undefined;
  /** The exports of one volume, by id. */
  ofVolume(pool: string, vid: string): BlockExportRecord[];
  insert(record: BlockExportRecord): void;
  markShuttingDown(id: string): void;
  /** Forgets an export; false when there was none. */
  remove(id: string): boolean;
}

export interface Store {
  /** The host's own record, made by the first start on a data folder. */
  host(): HostRecord;
  /** Runs `work` in one transaction: all its writes, events included, commit together or not at all. */
  transaction<T>(work: () => T): T;
  /**
   * Calls `listener` with the events of each transaction, in commit order, once the transaction
   * is on disk (durable): no one hears of a change that a power loss could still undo.
   */
  onCommit(listener: (events: readonly StoredEvent[]) => void): void;
  /**
   * Resolves once every transaction committed so far is on disk. A commit returns before that
   * (a crash of the process cannot lose it, a power loss could): what acknowledges a change to
   * a client waits for this first, and the waits of concurrent calls share their disk syncs.
   */
  durable(): Promise<void>;
  readonly vms: VmRepository;
  readonly labels: LabelRepository;
  readonly globals: GlobalPropertyRepository;
  readonly events: EventRepository;
  readonly requests: RequestRepository;
  readonly runtime: RuntimeRepository;
  readonly operations: OperationRepository;
  readonly pools: PoolRepository;
  readonly volumes: VolumeRepository;
  readonly attachments: VolumeAttachmentRepository;
  readonly blockExports: BlockExportRepository;
  /** Flushes and releases the state; the store is unusable afterwards. */
  close(): void;
}
