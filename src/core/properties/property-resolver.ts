import type { Hypervisor } from "../../ports/hypervisor";
import type { Store, VmRecord } from "../../ports/store";
import { globalSpec, vmSpec, type DefaultSpec, type PropertySpec, type PropertyValue } from "./property-schema";

/** A property's effective value; undefined when it has none (no default, never set). */
export interface Resolved {
  value: PropertyValue | undefined;
  isDefault: boolean;
}

/** What resolving reads: VMs by qid and name, and the set global properties. */
interface Reads {
  byQid(qid: number): VmRecord | undefined;
  byName(name: string): VmRecord | undefined;
  globals(): Readonly<Record<string, string>>;
}

/**
 * Works out properties' effective values: what was set, else the default, which may come from
 * the template (recursively), a global property, a constant, or be computed from the VM.
 */
export class PropertyResolver {
  private readonly reads: Reads;

  constructor(
    private readonly store: Store,
    private readonly hypervisor: Hypervisor,
    reads?: Reads,
  ) {
    this.reads = reads ?? {
      byQid: (qid) => store.vms.byQid(qid),
      byName: (name) => store.vms.byName(name),
      globals: () => store.globals.all(),
    };
  }

  /**
   * A resolver for one read of many VMs (a page of ListVms): it reads each template, netvm and
   * the globals once. Not for use across changes.
   */
  snapshot(): SnapshotResolver {
    return new SnapshotResolver(this.store, this.hypervisor);
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

  vm(record: VmRecord, spec: PropertySpec): Resolved {
    const stored = record.properties[spec.name];
    if (stored !== undefined) return { value: this.decode(spec, stored), isDefault: false };
    return { value: this.vmDefault(record, spec, spec.default), isDefault: true };
  }

  global(spec: PropertySpec, stored: Readonly<Record<string, string>> = this.reads.globals()): Resolved {
    const text = stored[spec.name];
    if (text !== undefined) return { value: this.decode(spec, text), isDefault: false };
    return { value: this.globalDefault(spec.default, stored), isDefault: true };
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
    }
  }

  /** The VM's template record, when it has one. */
  templateOf(record: VmRecord): VmRecord | undefined {
    if (record.klass !== "AppVM" && record.klass !== "DispVM") return undefined;
    const stored = record.properties.template;
    if (stored !== undefined) return this.reads.byQid(Number(stored));
    const fallback = this.global(globalSpec("default_template")).value;
    return typeof fallback === "string" ? this.reads.byName(fallback) : undefined;
  }

  /** The VM's effective netvm record, when it has one. */
  netvmOf(record: VmRecord): VmRecord | undefined {
    if (record.klass === "AdminVM") return undefined;
    const netvm = this.vm(record, vmSpec("netvm")).value;
    return typeof netvm === "string" ? this.reads.byName(netvm) : undefined;
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
        if (record.klass === "TemplateVM") return null;
        const fallback = this.global(globalSpec("default_netvm")).value;
        return fallback === record.name ? null : (fallback ?? null);
      }
      case "ip":
        return `10.137.${(qid >> 8) & 0xff}.${qid & 0xff}`;
      case "ip6":
        return `fd09:24ef:4179::a89:${qid.toString(16)}`;
      case "mac":
        return `00:16:3e:5e:${hex((qid >> 8) & 0xff)}:${hex(qid & 0xff)}`;
      case "start_time":
        return this.hypervisor.startTime(record.uuid)?.toISOString() ?? "";
      default:
        throw new Error(`no computed default for ${name}`);
    }
  }
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, "0");
}

/**
 * The VMs some resolving read, as pairs: the key it read by (a qid, or a name) and what it
 * found. Flat rather than an object per read: one list is kept for every VM listed.
 */
export type VmReads = readonly (number | string | VmRecord | undefined)[];

/**
 * A resolver that reads each VM and the globals once, and can tell which VMs a piece of
 * resolving consulted, so that its result can be kept for as long as they stay as they were.
 */
export class SnapshotResolver extends PropertyResolver {
  private readonly memo: MemoizedReads;
  private readonly trace: ReadTrace = { qid: new Map(), name: new Map() };
  private globalsText: string | undefined;

  constructor(store: Store, hypervisor: Hypervisor) {
    const memo = new MemoizedReads(store);
    super(store, hypervisor, memo);
    this.memo = memo;
  }

  /** Runs `work` and returns, with its result, the VMs it read (each read once). Not nested. */
  consulting<T>(work: () => T): { result: T; reads: VmReads } {
    // One trace for every call: the calls come by the thousand (two for each VM listed).
    if (this.memo.trace) throw new Error("consulting() calls do not nest: they share one trace");
    const trace = this.trace;
    trace.qid.clear();
    trace.name.clear();
    this.memo.trace = trace;
    try {
      const result = work();
      const reads: (number | string | VmRecord | undefined)[] = [];
      for (const [key, found] of trace.qid) reads.push(key, found);
      for (const [key, found] of trace.name) reads.push(key, found);
      return { result, reads };
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

/** The VMs read while resolving, by how they were asked for. */
interface ReadTrace {
  qid: Map<number, VmRecord | undefined>;
  name: Map<string, VmRecord | undefined>;
}

/** Reads of the store, each made once; those made while `trace` is set are noted in it. */
class MemoizedReads implements Reads {
  trace: ReadTrace | undefined;
  private readonly qids = new Map<number, VmRecord | undefined>();
  private readonly names = new Map<string, VmRecord | undefined>();
  private globalValues: Readonly<Record<string, string>> | undefined;

  constructor(private readonly store: Store) {}

  byQid(qid: number): VmRecord | undefined {
    const found = this.qids.has(qid) ? this.qids.get(qid) : this.remember(this.store.vms.byQid(qid), qid, this.qids);
    this.trace?.qid.set(qid, found);
    return found;
  }

  byName(name: string): VmRecord | undefined {
    const found = this.names.has(name) ? this.names.get(name) : this.remember(this.store.vms.byName(name), name, this.names);
    this.trace?.name.set(name, found);
    return found;
  }

  globals(): Readonly<Record<string, string>> {
    return (this.globalValues ??= this.store.globals.all());
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
