import type { Store } from "../../../ports/store";
import { vmClass } from "../../model/vm-classes";
import type { VmRecord } from "../../model/vm-record";
import type { PowerStates } from "../power-states";
import { globalSpec, vmSpec, type DefaultSpec, type Property, type PropertySpec, type PropertyValue } from "./property-schema";
import { sharedProperty } from "./shared-properties";
import { defaultAddresses } from "./vm-addresses";


/** What resolving reads: VMs by qid and name, and the set global properties. */
interface Reads {
  byQid(qid: number): VmRecord | undefined;
  byName(name: string): VmRecord | undefined;
  globals(): Readonly<Record<string, string>>;
  features(qid: number): Readonly<Record<string, string>>;
}

/** How many netvms an ipv6 feature is looked for through, at most. */
const MAX_NETVM_HOPS = 64;

/**
 * Works out properties' effective values: what was set, else the default, which may come from
 * the template (recursively), a global property, a constant, or be computed from the VM.
 */
export class PropertyResolver {
  private readonly reads: Reads;

  constructor(
    private readonly store: Store,
    private readonly powerStates: PowerStates,
    reads?: Reads,
  ) {
    this.reads = reads ?? {
      byQid: (qid) => store.vms.byQid(qid),
      byName: (name) => store.vms.byName(name),
      globals: () => store.globals.all(),
      features: (qid) => store.vms.features(qid),
    };
  }

  /**
   * A resolver for one read of many VMs (a page of ListVms): it reads each template, netvm and
   * the globals once. Not for use across changes.
   */
  snapshot(): SnapshotResolver {
    return new SnapshotResolver(this.store, this.powerStates);
  }

  /** Decodes a stored value of a property of this type. */
  decode(spec: PropertySpec, text: string): PropertyValue {
    switch (spec.type) {
      case "int":
        return Number(text);
      case "bool":
        return text === "1";
      case "vm":
        return text === "" ? null : (this.reads.byQid(Number(text))?.name ?? null);
      default:
        return text;
    }
  }

  /**
   * Encodes a value for the store. A vm value is stored as the qid of `target`, the VM it names
   * (as checkValue found it), so that it survives renames; none is "".
   */
  encode(spec: PropertySpec, value: PropertyValue, target: VmRecord | undefined): string {
    if (spec.type === "bool") return value ? "1" : "0";
    if (spec.type === "vm") return target ? String(target.qid) : "";
    return String(value);
  }

  vm(record: VmRecord, spec: PropertySpec): Property {
    const stored = record.properties[spec.name];
    if (stored !== undefined) {
      // An address set for a VM with no network (or IPv6 without the ipv6 feature) waits for it.
      if ((spec.name === "ip" || spec.name === "ip6") && !this.addressApplies(record, spec.name)) return sharedProperty(spec, "", false);
      return sharedProperty(spec, this.decode(spec, stored), false);
    }
    return sharedProperty(spec, this.vmDefault(record, spec, spec.default), true);
  }

  global(spec: PropertySpec, stored: Readonly<Record<string, string>> = this.reads.globals()): Property {
    const text = stored[spec.name];
    if (text !== undefined) return sharedProperty(spec, this.decode(spec, text), false);
    return sharedProperty(spec, this.globalDefault(spec.default, stored), true);
  }

  vmDefault(record: VmRecord, spec: PropertySpec, defaults: DefaultSpec): PropertyValue | undefined {
    switch (defaults.kind) {
      case "none":
        return undefined;
      case "constant":
        return defaults.value;
      case "global":
        return this.global(globalSpec(defaults.property)).value;
      case "template": {
        const template = this.templateOf(record);
        return template ? this.vm(template, spec).value : this.vmDefault(record, spec, defaults.otherwise);
      }
      case "computed":
        return this.computed(record, spec.name);
      case "byClass":
        return this.vmDefault(record, spec, defaults.classes.includes(record.klass) ? defaults.then : defaults.otherwise);
    }
  }

  /** The VM's template record, when it has one. */
  templateOf(record: VmRecord): VmRecord | undefined {
    if (vmClass(record.klass).templateClass === undefined) return undefined;
    const stored = record.properties.template;
    if (stored !== undefined) return this.reads.byQid(Number(stored));
    const fallback = this.global(globalSpec("default_template")).value;
    return typeof fallback === "string" ? this.reads.byName(fallback) : undefined;
  }

  /** The VM's effective netvm record, when it has one. */
  netvmOf(record: VmRecord): VmRecord | undefined {
    if (vmClass(record.klass).isHost) return undefined;
    const netvm = this.vm(record, vmSpec("netvm")).value;
    return typeof netvm === "string" ? this.reads.byName(netvm) : undefined;
  }

  /**
   * Whether a VM has an address of this kind, as in Qubes: an IP address only with a netvm, and
   * an IPv6 one only when the VM or a netvm of its chain also has the ipv6 feature on.
   */
  private addressApplies(record: VmRecord, kind: "ip" | "ip6"): boolean {
    return this.netvmOf(record) !== undefined && (kind === "ip" || this.withIpv6(record));
  }

  /** Whether the VM, or a netvm of its chain, has the ipv6 feature on (Qubes' check_with_netvm). */
  private withIpv6(record: VmRecord): boolean {
    let hop: VmRecord | undefined = record;
    for (let hops = 0; hop && hops < MAX_NETVM_HOPS; hops++, hop = this.netvmOf(hop)) {
      const value = this.reads.features(hop.qid).ipv6;
      if (value !== undefined) return value !== "";
    }
    return false;
  }

  private globalDefault(defaults: DefaultSpec, stored: Readonly<Record<string, string>>): PropertyValue | undefined {
    if (defaults.kind === "constant") return defaults.value;
    if (defaults.kind === "global") return this.global(globalSpec(defaults.property), stored).value;
    return undefined;
  }

  private computed(record: VmRecord, name: string): PropertyValue {
    const qid = record.qid;
    switch (name) {
      case "name":
        return record.name;
      case "uuid":
        return record.uuid;
      case "qid":
        return qid;
      case "klass":
        return record.klass;
      case "netvm": {
        if (!vmClass(record.klass).takesDefaultNetvm) return null;
        const fallback = this.global(globalSpec("default_netvm")).value;
        return fallback === record.name ? null : (fallback ?? null);
      }
      case "ip":
      case "ip6":
        return this.addressApplies(record, name) ? defaultAddresses(record)[name] : "";
      case "mac":
        return defaultAddresses(record).mac;
      // A DispVM's: its AppVM (Qubes keeps a DispVM's calls on its own AppVM's network path).
      case "default_dispvm":
        return this.templateOf(record)?.name ?? null;
      // A DispVM's: not when it is removed as it halts.
      case "include_in_backups":
        return this.vm(record, vmSpec("auto_cleanup")).value !== true;
      case "start_time":
        return this.powerStates.startedAt(record.uuid)?.toISOString() ?? "";
      default:
        throw new Error(`no computed default for ${name}`);
    }
  }
}


/**
 * The VMs some resolving read, as pairs: the key it read by (a qid, or a name) and what it
 * found. Flat rather than an object per read: one list is kept for every VM listed.
 */
export type VmReads = readonly (number | string | VmRecord | undefined)[];
/** VmReads as they are being noted. */
type ReadTrace = (number | string | VmRecord | undefined)[];

/**
 * A resolver that reads each VM and the globals once, and can tell which VMs a piece of
 * resolving consulted, so that its result can be kept for as long as they stay as they were.
 */
export class SnapshotResolver extends PropertyResolver {
  private readonly memo: MemoizedReads;
  private globalsText: string | undefined;

  constructor(store: Store, powerStates: PowerStates) {
    const memo = new MemoizedReads(store);
    super(store, powerStates, memo);
    this.memo = memo;
  }

  /** Runs `work` and returns, with its result, the VMs it read (each read once). Not nested. */
  consulting<T>(work: () => T): { result: T; reads: VmReads } {
    if (this.memo.trace) throw new Error("consulting() calls do not nest: the reads would be noted in one trace");
    const trace: ReadTrace = [];
    this.memo.trace = trace;
    try {
      return { result: work(), reads: trace };
    } finally {
      this.memo.trace = undefined;
    }
  }

  /** Whether each of these reads would find the same VM, unchanged (same uuid and revision). */
  sameAs(reads: VmReads): boolean {
    for (let i = 0; i < reads.length; i += 2) {
      const key = reads[i] as number | string;
      const found = reads[i + 1] as VmRecord | undefined;
      const now = typeof key === "number" ? this.memo.byQid(key) : this.memo.byName(key);
      if (now !== found && (now === undefined || found === undefined || now.uuid !== found.uuid || now.revision !== found.revision)) return false;
    }
    return true;
  }

  /** The global properties as text, to compare with another time's. */
  globalsAsText(): string {
    return (this.globalsText ??= JSON.stringify(Object.entries(this.memo.globals()).sort(([a], [b]) => a.localeCompare(b))));
  }
}

/** Reads of the store, each made once; those made while `trace` is set are noted in it. */
class MemoizedReads implements Reads {
  /**
   * The reads of one piece of resolving, as VmReads pairs. A flat list searched from the start:
   * a VM's properties read a few VMs (template, netvm), many times each.
   */
  trace: ReadTrace | undefined;
  private readonly qids = new Map<number, VmRecord | undefined>();
  private readonly names = new Map<string, VmRecord | undefined>();
  private globalValues: Readonly<Record<string, string>> | undefined;
  private readonly featureValues = new Map<number, Readonly<Record<string, string>>>();

  constructor(private readonly store: Store) {}

  byQid(qid: number): VmRecord | undefined {
    const found = this.qids.has(qid) ? this.qids.get(qid) : this.remember(this.store.vms.byQid(qid), qid, this.qids);
    if (this.trace) note(this.trace, qid, found);
    return found;
  }

  byName(name: string): VmRecord | undefined {
    const found = this.names.has(name) ? this.names.get(name) : this.remember(this.store.vms.byName(name), name, this.names);
    if (this.trace) note(this.trace, name, found);
    return found;
  }

  globals(): Readonly<Record<string, string>> {
    return (this.globalValues ??= this.store.globals.all());
  }

  features(qid: number): Readonly<Record<string, string>> {
    let features = this.featureValues.get(qid);
    if (!features) this.featureValues.set(qid, (features = this.store.vms.features(qid)));
    return features;
  }

  private remember<K>(found: VmRecord | undefined, key: K, memo: Map<K, VmRecord | undefined>): VmRecord | undefined {
    memo.set(key, found);
    if (found) {
      this.qids.set(found.qid, found);
      this.names.set(found.name, found);
    }
    return found;
  }
}

/** Adds a read to a trace, unless it holds it already. */
function note(trace: ReadTrace, key: number | string, found: VmRecord | undefined): void {
  for (let i = 0; i < trace.length; i += 2) if (trace[i] === key) return;
  trace.push(key, found);
}
