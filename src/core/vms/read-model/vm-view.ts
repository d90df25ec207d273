import type { PowerState, RuntimeFacts } from "../../model/power-state";
import type { VmClassName } from "../../model/vm-classes";
import type { VmRecord } from "../../model/vm-record";
import type { Property } from "../properties/vm-properties";
import type { StableVmView } from "./stable-vm-views";

/** What is known of a running VM: its hypervisor's facts, and its addresses on its network. */
export interface VmRuntime extends RuntimeFacts {
  /** Its ip property when it has a netvm; else empty. */
  ip: string;
  /** Its ip6 property when it has a netvm and IPv6; else empty. */
  ip6: string;
}

/** A VM as the core shows it. */
export interface Vm {
  qid: number;
  uuid: string;
  name: string;
  klass: VmClassName;
  state: PowerState;
  label: string;
  /** The template's name; empty when the VM has none. */
  template: string;
  tags: readonly string[];
  createdAt: Date;
  /** When its record was last written. */
  updatedAt: Date;
  /** Its etag (AIP-154): see vm-etag.ts. */
  etag: string;
  /** What the hypervisor told of it when it started, and its addresses; undefined while halted. */
  runtime: VmRuntime | undefined;
  /** Every property, in the full view only; those the hypervisor decides come last (`live`). */
  properties?: Property[];
  /** The features, in the full view only. */
  features?: Readonly<Record<string, string>>;
  /** In the full view, what stands for its stored part; see StableVmView. */
  stable?: StableVmView;
  /** In the full view, the properties the hypervisor decides, as it says now. */
  live?: readonly Property[];
}

/** Where the full views of one read work their stored part out, when asked. */
export interface StoredPartSource {
  properties(record: VmRecord, stable: StableVmView): Property[];
  features(record: VmRecord): Readonly<Record<string, string>>;
}

/**
 * A VM's full view. Its stored properties are worked out each time they are read, and only
 * then: a caller that kept what it derived from `stable` does not read them, and a page of
 * views does not hold them all at once.
 */
export class FullVmView implements Vm {
  readonly qid: number;
  readonly uuid: string;
  readonly name: string;
  readonly klass: VmClassName;
  readonly state: PowerState;
  readonly label: string;
  readonly template: string;
  readonly tags: readonly string[];
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly etag: string;
  readonly runtime: VmRuntime | undefined;

  constructor(
    basic: Vm,
    readonly stable: StableVmView,
    readonly live: readonly Property[],
    private readonly record: VmRecord,
    /** The features, when they were read with the stable view. */
    private readonly readFeatures: Readonly<Record<string, string>> | undefined,
    private readonly source: StoredPartSource,
  ) {
    ({ qid: this.qid, uuid: this.uuid, name: this.name, klass: this.klass, state: this.state } = basic);
    ({ label: this.label, template: this.template, tags: this.tags, createdAt: this.createdAt, updatedAt: this.updatedAt, etag: this.etag } = basic);
    this.runtime = basic.runtime;
  }

  get properties(): Property[] {
    return this.source.properties(this.record, this.stable).concat(this.live);
  }

  get features(): Readonly<Record<string, string>> {
    return this.readFeatures ?? this.source.features(this.record);
  }
}
