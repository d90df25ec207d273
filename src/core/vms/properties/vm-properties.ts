import type { Store } from "../../../ports/store";
import type { EventLog } from "../../events/event-log";
import { withProperty, type VmRecord } from "../../model/vm-record";
import type { CallContext } from "../../shared/call-context";
import type { PowerStates } from "../power-states";
import { propertyNeedsHalted } from "../vm-errors";
import { propertyReset, propertySet } from "../vm-events";
import type { VmLookup } from "../vm-lookup";
import type { VmOperations } from "../vm-operations";
import { checkValue, checkVmProperty, MEMORY_BOUNDS, normalisedValue, requireMemoryWithinMaxmem, requireMemoryWithinMaxmemFrom, refuseNetvmLoops, refuseIfDispvmsRun, requireCoherentTemplate } from "./property-checks";
import { memoryOverMaxmemAsked, propertyNoDefault, propertyReadOnly, vmPropertyNotFound } from "./property-errors";
import type { PropertyResolver } from "./property-resolver";
import type { Property } from "./property-schema";
import { defaultOfClass, vmPropertySpecs, vmSpec, type PropertySpec, type PropertyValue } from "./property-schema";
import { eventText } from "./property-text";
import type { VmTarget } from "../vm-etag";

export type { Property } from "./property-schema";

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

/** The properties whose default, on a reset, is checked as a value set would be. */
const CHECKED_ON_RESET: ReadonlySet<string> = new Set(["provides_network", "template_for_dispvms", "default_dispvm"]);

/** VM properties (Qubes' vm.property.*): typed, with defaults from template and globals. */
export class VmProperties {
  constructor(
    private readonly store: Store,
    private readonly vms: VmLookup,
    private readonly resolver: PropertyResolver,
    private readonly powerStates: PowerStates,
    private readonly operations: VmOperations,
    private readonly events: EventLog,
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

  set(vm: VmTarget, name: string, value: PropertyValue, ctx: CallContext): Promise<Property> {
    return this.operations.on(vm, "vm", ctx, "set a property", (record) => this.setNow(record, name, value));
  }

  private setNow(record: VmRecord, name: string, given: PropertyValue): Property {
    return this.store.transaction(() => {
      const spec = this.specOf(record, name);
      const value = normalisedValue(spec, given);
      this.checkWritable(record, spec);
      const target = checkValue(this.store, spec, value, "value");
      checkVmProperty(this.store, this.resolver, record, spec, value, target, this.isRunning);
      const old = this.resolver.vm(record, spec);
      this.store.vms.setProperty(record.qid, name, this.resolver.encode(spec, value, target));
      const written = this.store.vms.byQid(record.qid)!;
      if (MEMORY_BOUNDS.has(name)) requireMemoryWithinMaxmemFrom(this.store, this.resolver, written);
      const now = this.resolver.vm(written, spec);
      this.events.append(propertySet(record, name, eventText(now.value), eventText(old.value)));
      return now;
    });
  }

  /**
   * A VM being made, with the properties its request gives checked and set: the rules are
   * those of SetProperty, but for what may be set only at creation.
   */
  atCreation(record: VmRecord, values: Readonly<Record<string, PropertyValue>>): VmRecord {
    let current = record;
    for (const [name, given] of Object.entries(values)) {
      const field = `properties[${name}]`;
      const spec = this.specOf(current, name, field);
      const value = normalisedValue(spec, given);
      if (spec.write === "read-only") throw propertyReadOnly(current.name, spec.name);
      const target = checkValue(this.store, spec, value, field);
      checkVmProperty(this.store, this.resolver, current, spec, value, target, this.isRunning);
      current = withProperty(current, name, this.resolver.encode(spec, value, target));
    }
    if (values.memory !== undefined && values.maxmem !== undefined) {
      // Both asked at once: a bad combination of the request's own fields, not of the VM's state.
      const memory = this.resolver.vm(current, vmSpec("memory")).value as number;
      const maxmem = this.resolver.vm(current, vmSpec("maxmem")).value as number;
      if (maxmem !== 0 && memory > maxmem) throw memoryOverMaxmemAsked(memory, maxmem);
    }
    requireMemoryWithinMaxmem(this.resolver, current);
    return current;
  }

  reset(vm: VmTarget, name: string, ctx: CallContext): Promise<Property> {
    return this.operations.on(vm, "vm", ctx, "reset a property", (record) => this.resetNow(record, name));
  }

  private resetNow(record: VmRecord, name: string): Property {
    return this.store.transaction(() => {
      const spec = this.specOf(record, name);
      this.checkWritable(record, spec);
      if (spec.default.kind === "none") throw propertyNoDefault(record.name, name);
      const old = this.resolver.vm(record, spec);
      if (this.store.vms.deleteProperty(record.qid, name)) this.events.append(propertyReset(record, name, eventText(old.value)));
      // The default it returns to may close a loop of netvms, or not suit the VM's class.
      if (name === "netvm") refuseNetvmLoops(this.store, this.resolver.snapshot());
      if (MEMORY_BOUNDS.has(name)) requireMemoryWithinMaxmemFrom(this.store, this.resolver, this.store.vms.byQid(record.qid)!);
      // The default it returns to is held to the rules a value set is: a reset of
      // provides_network or template_for_dispvms is turning it off.
      if (CHECKED_ON_RESET.has(name)) {
        const now = this.store.vms.byQid(record.qid)!;
        const value = this.resolver.vm(now, spec).value ?? null;
        checkVmProperty(this.store, this.resolver, now, spec, value, typeof value === "string" ? this.store.vms.byName(value) : undefined, this.isRunning);
      }
      if (name === "template") {
        const now = this.store.vms.byQid(record.qid)!;
        requireCoherentTemplate(this.resolver, now);
        refuseIfDispvmsRun(this.store, now, this.isRunning);
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
    let defaults = defaultOfClass(spec.default, record.klass);
    if (defaults.kind === "template") {
      const template = this.resolver.templateOf(record);
      if (template) return { defaultOrigin: "template", defaultFrom: template.name };
      defaults = defaultOfClass(defaults.otherwise, record.klass);
    }
    if (defaults.kind === "global") return { defaultOrigin: "global", defaultFrom: defaults.property };
    return { defaultOrigin: defaults.kind === "template" ? "constant" : defaults.kind, defaultFrom: "" };
  }

  private readonly isRunning = (vm: VmRecord): boolean => this.powerStates.of(vm) !== "Halted";

  private specOf(record: VmRecord, name: string, field = "name"): PropertySpec {
    const spec = vmPropertySpecs(record.klass).find((s) => s.name === name);
    if (!spec) throw vmPropertyNotFound(record, name, field);
    return spec;
  }

  private checkWritable(record: VmRecord, spec: PropertySpec): void {
    if (spec.write === "read-only" || spec.write === "creation") throw propertyReadOnly(record.name, spec.name);
    if (spec.write === "halted") {
      const state = this.powerStates.of(record);
      if (state !== "Halted") throw propertyNeedsHalted(record, spec.name, state);
    }
  }
}

const SPECS_BY_NAME = new Map<string, PropertySpec[]>();

/** A class's property specs, sorted by name once. */
export function specsByName(klass: VmRecord["klass"]): PropertySpec[] {
  let specs = SPECS_BY_NAME.get(klass);
  if (!specs) SPECS_BY_NAME.set(klass, (specs = vmPropertySpecs(klass).sort((a, b) => a.name.localeCompare(b.name))));
  return specs;
}
