import type { Clock } from "../../ports/clock";
import type { Hypervisor } from "../../ports/hypervisor";
import type { Store, VmRecord } from "../../ports/store";
import { failedPrecondition, notFound } from "../errors";
import type { VmLookup } from "../vm-lookup";
import { checkValue, checkVmProperty } from "./property-checks";
import type { Property, PropertyResolver } from "./property-resolver";
import { vmPropertySpecs, type PropertySpec, type PropertyValue } from "./property-schema";
import { eventText } from "./property-text";

export type { Property } from "./property-resolver";

/** Where a property's default comes from, for this VM now. */
export type DefaultOrigin = "none" | "constant" | "template" | "global" | "computed";

/** A property's schema, and the default it would have now. */
export interface PropertyDescription {
  spec: PropertySpec;
  defaultValue: PropertyValue | undefined;
  defaultOrigin: DefaultOrigin;
  /** The global property or template VM the default comes from; empty otherwise. */
  defaultFrom: string;
}

/** VM properties (Qubes' vm.property.*): typed, with defaults from template and globals. */
export class VmProperties {
  constructor(
    private readonly store: Store,
    private readonly vms: VmLookup,
    private readonly resolver: PropertyResolver,
    private readonly hypervisor: Hypervisor,
    private readonly clock: Clock,
  ) {}

  list(vm: string): Property[] {
    return this.all(this.vms.resolve(vm));
  }

  /**
   * Every property of a stored VM (or those of `specs`), by name; `resolver` may be a snapshot
   * for reading many VMs.
   */
  all(record: VmRecord, resolver = this.resolver, specs: readonly PropertySpec[] = specsByName(record.klass)): Property[] {
    return specs.map((spec) => resolver.vm(record, spec));
  }

  /** The schema of one of the VM's properties; NOT_FOUND when its class has no such property. */
  spec(vm: string, name: string): PropertySpec {
    return this.specOf(this.vms.resolve(vm), name);
  }

  get(vm: string, name: string): Property {
    const record = this.vms.resolve(vm);
    const spec = this.specOf(record, name);
    return this.resolver.vm(record, spec);
  }

  set(vm: string, name: string, value: PropertyValue): Property {
    return this.store.transaction(() => {
      const record = this.vms.resolve(vm);
      const spec = this.specOf(record, name);
      this.checkWritable(record, spec);
      const target = checkValue(this.store, spec, value, "value");
      checkVmProperty(this.store, this.resolver, record, spec, value, target);
      const old = this.resolver.vm(record, spec);
      this.store.vms.setProperty(record.qid, name, this.resolver.encode(spec, value, target));
      const now = this.resolver.vm(this.store.vms.byQid(record.qid)!, spec);
      const kwargs = { name, newvalue: eventText(now.value), oldvalue: eventText(old.value) };
      this.store.events.append({ subject: record.name, name: `property-set:${name}`, kwargs }, this.clock.now());
      return now;
    });
  }

  /** Sets properties on a VM being created, within its creation's transaction. */
  setAtCreation(record: VmRecord, values: Readonly<Record<string, PropertyValue>>): void {
    for (const [name, value] of Object.entries(values)) {
      const spec = this.specOf(record, name, `properties[${name}]`);
      if (spec.write === "read-only") throw readOnly(record, spec);
      const current = this.store.vms.byQid(record.qid)!;
      const target = checkValue(this.store, spec, value, `properties[${name}]`);
      checkVmProperty(this.store, this.resolver, current, spec, value, target);
      this.store.vms.setProperty(record.qid, name, this.resolver.encode(spec, value, target));
    }
  }

  reset(vm: string, name: string): Property {
    return this.store.transaction(() => {
      const record = this.vms.resolve(vm);
      const spec = this.specOf(record, name);
      this.checkWritable(record, spec);
      if (spec.default.kind === "none") {
        throw failedPrecondition("PROPERTY_NO_DEFAULT", `${name} has no default to return to`, { vm: record.name, property: name });
      }
      const old = this.resolver.vm(record, spec);
      if (this.store.vms.deleteProperty(record.qid, name)) {
        this.store.events.append({ subject: record.name, name: `property-reset:${name}`, kwargs: { name, oldvalue: eventText(old.value) } }, this.clock.now());
      }
      return this.resolver.vm(this.store.vms.byQid(record.qid)!, spec);
    });
  }

  describe(vm: string, name: string): PropertyDescription {
    const record = this.vms.resolve(vm);
    const spec = this.specOf(record, name);
    return { spec, defaultValue: this.resolver.vmDefault(record, spec, spec.default), ...this.origin(record, spec) };
  }

  private origin(record: VmRecord, spec: PropertySpec): { defaultOrigin: DefaultOrigin; defaultFrom: string } {
    let defaults = spec.default;
    if (defaults.kind === "template") {
      const template = this.resolver.templateOf(record);
      if (template) return { defaultOrigin: "template", defaultFrom: template.name };
      defaults = defaults.otherwise;
    }
    if (defaults.kind === "global") return { defaultOrigin: "global", defaultFrom: defaults.property };
    return { defaultOrigin: defaults.kind === "template" ? "constant" : defaults.kind, defaultFrom: "" };
  }

  private specOf(record: VmRecord, name: string, field = "name"): PropertySpec {
    const spec = vmPropertySpecs(record.klass).find((s) => s.name === name);
    if (!spec) throw notFound("PROPERTY_NOT_FOUND", `${record.klass} ${record.name} has no property ${name}`, { vm: record.name, property: name, field });
    return spec;
  }

  private checkWritable(record: VmRecord, spec: PropertySpec): void {
    if (spec.write === "read-only" || spec.write === "creation") throw readOnly(record, spec);
    if (spec.write === "halted") {
      const state = this.hypervisor.powerState(record.uuid);
      if (state !== "Halted") {
        throw failedPrecondition("VM_NOT_HALTED", `${spec.name} of ${record.name} changes only while it is halted; it is ${state}`, {
          vm: record.name,
          property: spec.name,
          state,
        });
      }
    }
  }
}

function readOnly(record: VmRecord, spec: PropertySpec) {
  const hint = spec.name === "name" ? " (use RenameVm)" : "";
  return failedPrecondition("PROPERTY_READ_ONLY", `${spec.name} is read-only${hint}`, { vm: record.name, property: spec.name });
}

const SPECS_BY_NAME = new Map<string, PropertySpec[]>();

/** A class's property specs, sorted by name once. */
export function specsByName(klass: VmRecord["klass"]): PropertySpec[] {
  let specs = SPECS_BY_NAME.get(klass);
  if (!specs) SPECS_BY_NAME.set(klass, (specs = vmPropertySpecs(klass).sort((a, b) => a.name.localeCompare(b.name))));
  return specs;
}
