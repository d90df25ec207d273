import type { Store } from "../../../ports/store";
import type { VmClassName } from "../../model/vm-classes";
import type { VmRecord } from "../../model/vm-record";
import type { SnapshotResolver, VmReads } from "../properties/property-resolver";
import type { PropertySpec } from "../properties/property-schema";
import { specsByName, type Property, type VmProperties } from "../properties/vm-properties";

/**
 * Stands for the stored part of a VM's full view — its properties but those the hypervisor
 * decides (start_time), and its features: the same object for as long as that part holds, so
 * that what a caller derives from it (its encoding) can be kept with it.
 */
export interface StableVmView {
  /**
   * The same object for every stable view of one VM, until the VM is removed: what a caller
   * keeps for a VM across its views (the room its encoding takes) can be kept with it.
   */
  readonly lineage: object;
  /** The template's name; empty when the VM has none. */
  readonly template: string;
  /** The properties the hypervisor decides: a full view lists them last. */
  readonly live: readonly PropertySpec[];
}

/** A stable view, with the VM's features when they were read with it. */
export interface StableViewRead {
  view: StableVmView;
  features?: Readonly<Record<string, string>>;
}

const SPECS = new Map<VmClassName, { stored: readonly PropertySpec[]; live: readonly PropertySpec[] }>();

/** A stable view, and what says whether it still holds: one object for each VM listed. */
class KeptView implements StableVmView {
  /** Whether the stored properties were worked out, and their reads noted, for this view. */
  resolved = false;

  constructor(
    readonly lineage: object,
    readonly template: string,
    readonly live: readonly PropertySpec[],
    readonly uuid: string,
    readonly revision: number,
    readonly globals: string,
    /** The VMs that working the view out read (template, netvm…), as they were then. */
    public reads: VmReads,
  ) {}
}

/**
 * Which stable views still hold: listing 10,000 VMs with every property must not resolve
 * 260,000 properties each time when the caller kept their encoding. A view holds while the VM,
 * every VM its properties were resolved from, and the global properties are as they were (VM
 * records carry a revision that every write to the VM changes). Only what says whether a view
 * holds is kept, not the stored part: that is worked out when it is read, one VM at a time, so
 * that a page of them is never in memory at once.
 */
export class StableVmViews {
  private readonly kept = new Map<number, KeptView>();

  constructor(
    private readonly store: Store,
    private readonly properties: VmProperties,
  ) {}

  /** The stable views of these VMs; `resolver` is the snapshot of this one read. */
  of(records: readonly VmRecord[], resolver: SnapshotResolver): StableViewRead[] {
    const globals = resolver.globalsAsText();
    const held = records.map((record) => this.held(record, resolver, globals));
    const stale = records.filter((_, i) => !held[i]);
    // A new view's stored part will be read: its features are read now, for all in one query.
    const features = stale.length > 0 ? this.store.vms.featuresOf(stale.map((record) => record.qid)) : undefined;
    return records.map((record, i) => held[i] ?? { view: this.renew(record, resolver, globals), features: features!.get(record.qid)! });
  }

  /** The properties of the stored part of `view`, the VM's current stable view, worked out now. */
  storedProperties(record: VmRecord, view: StableVmView, resolver: SnapshotResolver): Property[] {
    const { result, reads } = resolver.consulting(() => this.properties.all(record, resolver, specsOf(record.klass).stored));
    const kept = this.kept.get(record.qid);
    if (kept === view && !kept.resolved) {
      kept.reads = kept.reads.concat(reads);
      kept.resolved = true;
    }
    return result;
  }

  /** Drops what was kept of a removed VM. */
  forget(qid: number): void {
    this.kept.delete(qid);
  }

  private held(record: VmRecord, resolver: SnapshotResolver, globals: string): StableViewRead | undefined {
    const kept = this.kept.get(record.qid);
    const holds =
      kept !== undefined &&
      kept.resolved &&
      kept.uuid === record.uuid &&
      kept.revision === record.revision &&
      kept.globals === globals &&
      resolver.sameAs(kept.reads);
    return holds ? { view: kept } : undefined;
  }

  private renew(record: VmRecord, resolver: SnapshotResolver, globals: string): StableVmView {
    const { result: template, reads } = resolver.consulting(() => resolver.templateOf(record)?.name ?? "");
    const earlier = this.kept.get(record.qid);
    const lineage = earlier?.uuid === record.uuid ? earlier.lineage : {};
    const view = new KeptView(lineage, template, specsOf(record.klass).live, record.uuid, record.revision, globals, reads);
    this.kept.set(record.qid, view);
    return view;
  }
}

/** A class's properties, by name: those the store decides, and those the hypervisor does. */
function specsOf(klass: VmClassName): { stored: readonly PropertySpec[]; live: readonly PropertySpec[] } {
  let specs = SPECS.get(klass);
  if (!specs) {
    const all = specsByName(klass);
    specs = Object.freeze({
      stored: Object.freeze(all.filter((spec) => !spec.live)),
      live: Object.freeze(all.filter((spec) => spec.live)),
    });
    SPECS.set(klass, specs);
  }
  return specs;
}
