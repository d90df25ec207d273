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
  snapshot(): PropertyResolver {
    const byQid = new Map<number, VmRecord | undefined>();
    const byName = new Map<string, VmRecord | undefined>();
    let globals: Readonly<Record<string, string>> | undefined;
    const remember = (record: VmRecord | undefined) => {
      if (record) {
        byQid.set(record.qid, record);
        byName.set(record.name, record);
      }
      return record;
    };
    return new PropertyResolver(this.store, this.hypervisor, {
      byQid: (qid) => (byQid.has(qid) ? byQid.get(qid) : remember(this.store.vms.byQid(qid))),
      byName: (name) => (byName.has(name) ? byName.get(name) : remember(this.store.vms.byName(name))),
      globals: () => (globals ??= this.store.globals.all()),
    });
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
