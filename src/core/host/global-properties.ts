import type { Store } from "../../ports/store";
import type { EventLog } from "../events/event-log";
import { HOST_SUBJECT } from "../model/event";
import type { CallContext } from "../shared/call-context";
import type { VmRecord } from "../model/vm-record";
import type { PowerStates } from "../vms/power-states";
import { checkGlobalProperty, checkValue, refuseNetvmLoops, refuseTemplateChangeUnderRunningDispvms, requireCoherentTemplates } from "../vms/properties/property-checks";
import { propertyNeedsHalted } from "../vms/vm-errors";
import { globalPropertyNotFound } from "../vms/properties/property-errors";
import type { PropertyResolver } from "../vms/properties/property-resolver";
import { findGlobalSpec, GLOBAL_PROPERTIES, vmPropertySpecs, type PropertySpec, type PropertyValue } from "../vms/properties/property-schema";
import { eventText } from "../vms/properties/property-text";
import type { Property, PropertyDescription } from "../vms/properties/vm-properties";
import { propertyReset, propertySet } from "../vms/vm-events";

/** The host's global properties (Qubes' property.* on the AdminVM). */
export class GlobalProperties {
  constructor(
    private readonly store: Store,
    private readonly resolver: PropertyResolver,
    private readonly events: EventLog,
    private readonly powerStates: PowerStates,
  ) {}

  list(): Property[] {
    const stored = this.store.globals.all();
    return [...GLOBAL_PROPERTIES].sort((a, b) => a.name.localeCompare(b.name)).map((spec) => this.resolver.global(spec, stored));
  }

  /** The schema of a global property; NOT_FOUND for an unknown name. */
  spec(name: string): PropertySpec {
    return specOf(name);
  }

  get(name: string): Property {
    return this.resolver.global(specOf(name));
  }

  set(name: string, value: PropertyValue, _ctx: CallContext): Property {
    return this.store.transaction(() => {
      const spec = specOf(name);
      const target = checkValue(this.store, spec, value, "value");
      checkGlobalProperty(this.resolver, spec, value, target);
      const old = this.resolver.global(spec);
      const before = this.vmDefaults();
      this.store.globals.set(name, this.resolver.encode(spec, value, target));
      const now = this.resolver.global(spec);
      this.events.append(propertySet(HOST_SUBJECT, name, eventText(now.value), eventText(old.value)));
      this.tellFollowers(before);
      // The VMs that take default_netvm follow it: their chains may come back on themselves.
      if (name === "default_netvm") refuseNetvmLoops(this.store, this.resolver.snapshot());
      // Those that take default_template follow it too: it must suit them.
      if (name === "default_template") requireCoherentTemplates(this.store, this.resolver.snapshot());
      return now;
    });
  }

  reset(name: string, _ctx: CallContext): Property {
    return this.store.transaction(() => {
      const spec = specOf(name);
      const old = this.resolver.global(spec);
      const before = this.vmDefaults();
      if (this.store.globals.delete(name)) {
        this.events.append(propertyReset(HOST_SUBJECT, name, eventText(old.value)));
        this.tellFollowers(before);
      }
      if (name === "default_template") requireCoherentTemplates(this.store, this.resolver.snapshot());
      return this.resolver.global(spec);
    });
  }

  /** Each VM's value of every property it takes by default (but live ones), as event text. */
  private vmDefaults(): Map<number, Map<string, string>> {
    const resolver = this.resolver.snapshot();
    const defaults = new Map<number, Map<string, string>>();
    for (const vm of this.store.vms.all()) {
      const values = new Map<string, string>();
      for (const spec of vmPropertySpecs(vm.klass)) {
        if (!spec.live && vm.properties[spec.name] === undefined) values.set(spec.name, eventText(resolver.vm(vm, spec).value));
      }
      defaults.set(vm.qid, values);
    }
    return defaults;
  }

  /**
   * Tells, as Qubes does (property-reset:<name> with its old value), of each VM property that a
   * global change gave another value by way of its default: default_netvm changes the netvm (and
   * the addresses) of the VMs that take it, default_kernel their kernel, and so on.
   */
  private tellFollowers(before: Map<number, Map<string, string>>): void {
    const after = this.vmDefaults();
    for (const vm of this.store.vms.all()) {
      const was = before.get(vm.qid);
      for (const [property, value] of after.get(vm.qid) ?? []) {
        const old = was?.get(property);
        if (old === undefined || old === value) continue;
        if (property === "template") this.refuseTemplateChange(vm);
        this.events.append(propertyReset(vm, property, old));
      }
    }
  }

  /**
   * A template changes only while its VM is halted, and not under the DispVMs based on it that
   * run: by way of default_template as much as by SetProperty.
   */
  private refuseTemplateChange(vm: VmRecord): void {
    const state = this.powerStates.of(vm);
    if (state !== "Halted") throw propertyNeedsHalted(vm, "template", state);
    refuseTemplateChangeUnderRunningDispvms(this.store, vm, (other) => this.powerStates.of(other) !== "Halted");
  }

  describe(name: string): PropertyDescription {
    const spec = specOf(name);
    const defaultValue = spec.default.kind === "constant" ? spec.default.value : spec.default.kind === "global" ? this.get(spec.default.property).value : undefined;
    const fromGlobal = spec.default.kind === "global";
    return { spec, defaultValue, defaultOrigin: fromGlobal ? "global" : "constant", defaultFrom: fromGlobal ? (spec.default as { property: string }).property : "" };
  }
}

function specOf(name: string): PropertySpec {
  const spec = findGlobalSpec(name);
  if (!spec) throw globalPropertyNotFound(name);
  return spec;
}
