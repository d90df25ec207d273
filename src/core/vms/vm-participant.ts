import type { Log } from "../../ports/log";
import type { LaunchPlan } from "../model/launch-plan";
import type { HaltCause } from "../model/power-state";
import type { VmRecord } from "../model/vm-record";
import type { VolumeFormat } from "../model/volume";
import type { CallContext } from "../shared/call-context";
import { unreported, type ProgressReporter } from "../shared/progress";
import type { Revert, Undo } from "../shared/revert";

/**
 * Where a new VM's volumes go, as CreateVm and CloneVm ask: one pool for them all, or a pool
 * per volume (root, private, volatile, kernel); what neither names follows the global
 * default_pool_<volume>. A read-only clone's volumes are all read-only.
 */
export interface VolumePlacement {
  pool: string;
  volumePools: Readonly<Record<string, string>>;
  readOnly?: boolean;
  /** What some of a new VM's own volumes are made from, by volume name, instead of empty or its template's. */
  contents?: Readonly<Record<string, NewVolumeContent>>;
}

/** What one of a new VM's own volumes is made from (CreateVm's volumes, ImportVolume's new_template). */
export type NewVolumeContent =
  /** A pool's volume that no VM owns, which becomes the VM's: moved into it, not copied. */
  | { kind: "existing"; pool: string; vid: string }
  /** An image in Steward's images folder, imported: its format told by the request, or by its first bytes. */
  | { kind: "image"; file: string; format: VolumeFormat | undefined; sha256: string }
  /** The bytes of an import stream, all or nothing, as ImportVolume takes them. */
  | {
      kind: "stream";
      sizeBytes: number;
      sha256: string;
      format: VolumeFormat;
      chunks: AsyncIterable<Uint8Array>;
      /** Told what arrived, once it all did and checked out. */
      received?: (received: { bytesReceived: number; sha256: string }) => void;
    };

export const DEFAULT_PLACEMENT: VolumePlacement = Object.freeze({ pool: "", volumePools: Object.freeze({}) });

/** How a VM halted, as its participants are told. */
export interface HaltReport {
  cause: HaltCause;
  /** What the hypervisor said of it (an exit status, a panic message); may be empty. */
  detail: string;
}

/**
 * How another area (storage, network, devices, disposables) joins a VM's life, as Qubes'
 * extensions do with their domain-pre-start handlers, but typed. Every hook is optional. A hook
 * that changes something returns how to undo it: when a later step of the same change fails,
 * the steps done are undone in reverse order and the VM is left as it was. Hooks run in the
 * order the composition root lists the participants, within the VM's operation (no other
 * operation on the VM runs meanwhile).
 */
export interface VmParticipant {
  /** Names the participant in the log. */
  readonly name: string;
  /**
   * Refuses, before any work begins, a new VM the area cannot make as asked (a volume content
   * its class does not take): the call fails, not an operation.
   */
  checkCreate?(vm: VmRecord, placement: VolumePlacement): Promise<void>;
  /**
   * A VM is being made (CreateVm, CreateDisposableVm): before its record commits. What it
   * imports it tells to `copied` (bytes done of all it imports), which CreateVm's operation
   * reports.
   */
  onCreate?(vm: VmRecord, ctx: CallContext, placement: VolumePlacement, copied: ProgressReporter): Promise<Undo | void>;
  /**
   * The new VM's record is being stored (by CreateVm, CreateDisposableVm or CloneVm): within
   * that transaction, make what onCreate or onClone prepared the VM's, synchronously. A throw
   * refuses the VM, and the steps before are undone.
   */
  onCommit?(vm: VmRecord): void;
  /**
   * A VM is being made as a copy of `source` (CloneVm): before the clone's record commits. What
   * it copies byte by byte it tells to `copied` (bytes done of all it copies), which the clone's
   * operation reports.
   */
  onClone?(source: VmRecord, clone: VmRecord, ctx: CallContext, placement: VolumePlacement, copied: ProgressReporter): Promise<Undo | void>;
  /** The VM is about to be launched: add to its plan (disks, network interfaces, devices). */
  beforeStart?(vm: VmRecord, plan: LaunchPlan, ctx: CallContext): Promise<Undo | void>;
  /**
   * The VM halted, however it did: settle what it leaves (save or discard volumes, release
   * addresses). Runs before a caller waiting for the halt is answered, and before any next
   * operation on the VM; a failure is logged, and the next participants still run.
   */
  afterHalt?(vm: VmRecord, halt: HaltReport, ctx: CallContext): Promise<void>;
  /**
   * The VM is being removed, before its record is deleted: get ready to let go of what the area
   * holds for it in a way that can still be undone (move its volumes aside), since the removal
   * may yet be refused.
   */
  onRemove?(vm: VmRecord, ctx: CallContext): Promise<Undo | void>;
  /**
   * The VM's record is deleted: finish what onRemove made ready (delete what it moved aside).
   * A failure is logged, and the next participants still run; what is left is for the start-up
   * sweep.
   */
  afterRemove?(vm: VmRecord, ctx: CallContext): Promise<void>;
}

/** The participants, in the order the composition root lists them, and running their hooks. */
export class VmParticipants {
  private list: readonly VmParticipant[] | undefined;

  constructor(private readonly log: Log) {}

  /** Sets the participants, once; the composition root does, after building them. */
  enlist(participants: readonly VmParticipant[]): void {
    if (this.list) throw new Error("the VM participants are enlisted once");
    this.list = [...participants];
  }

  /** Whether any participant has this hook: without one, a change has no step to wait for. */
  join(hook: keyof Omit<VmParticipant, "name">): boolean {
    return this.all().some((participant) => participant[hook] !== undefined);
  }

  async checkCreate(vm: VmRecord, placement: VolumePlacement = DEFAULT_PLACEMENT): Promise<void> {
    for (const participant of this.all()) await participant.checkCreate?.(vm, placement);
  }

  async created(vm: VmRecord, ctx: CallContext, revert: Revert, placement: VolumePlacement = DEFAULT_PLACEMENT, copied: ProgressReporter = unreported): Promise<void> {
    for (const participant of this.all()) if (participant.onCreate) revert.add(await participant.onCreate(vm, ctx, placement, copied));
  }

  /** Within the transaction that stores a new VM. */
  committing(vm: VmRecord): void {
    for (const participant of this.all()) participant.onCommit?.(vm);
  }

  async cloned(source: VmRecord, clone: VmRecord, ctx: CallContext, revert: Revert, placement: VolumePlacement = DEFAULT_PLACEMENT, copied: ProgressReporter = unreported): Promise<void> {
    for (const participant of this.all()) if (participant.onClone) revert.add(await participant.onClone(source, clone, ctx, placement, copied));
  }

  async beforeStart(vm: VmRecord, plan: LaunchPlan, ctx: CallContext, revert: Revert): Promise<void> {
    for (const participant of this.all()) if (participant.beforeStart) revert.add(await participant.beforeStart(vm, plan, ctx));
  }

  async removing(vm: VmRecord, ctx: CallContext, revert: Revert): Promise<void> {
    for (const participant of this.all()) if (participant.onRemove) revert.add(await participant.onRemove(vm, ctx));
  }

  afterHalt(vm: VmRecord, halt: HaltReport, ctx: CallContext): Promise<void> {
    return this.eachLogged(vm, "a participant failed to settle a halted VM", (participant) => participant.afterHalt?.(vm, halt, ctx));
  }

  removed(vm: VmRecord, ctx: CallContext): Promise<void> {
    return this.eachLogged(vm, "a participant failed to finish removing a VM", (participant) => participant.afterRemove?.(vm, ctx));
  }

  /** Runs a hook of every participant, in order; one that fails is logged, and the next still run. */
  private async eachLogged(vm: VmRecord, failure: string, hook: (participant: VmParticipant) => Promise<void> | undefined): Promise<void> {
    for (const participant of this.all()) {
      try {
        await hook(participant);
      } catch (error) {
        this.log.error({ vm: vm.name, participant: participant.name, err: error }, failure);
      }
    }
  }

  /** Logs an undo that failed: what it should have undone stays, and the log says so. */
  undoFailed(vm: string, step: string): (error: unknown) => void {
    return (error) => this.log.error({ vm, step, err: error }, "undoing a failed step failed");
  }

  private all(): readonly VmParticipant[] {
    return this.list ?? [];
  }
}
