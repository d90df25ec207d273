import type { Store } from "../../ports/store";
import type { EventLog } from "../events/event-log";
import { HOST_SUBJECT } from "../model/event";
import type { CallContext } from "../shared/call-context";
import type { VmRecord } from "../model/vm-record";
import type { PowerStates } from "../vms/power-states";
import { checkGlobalProperty, checkValue, refuseNetvmLoops, refuseIfDispvmsRun, requireCoherentTemplates, requireMemoryWithinMaxmemEverywhere } from "../vms/properties/property-checks";
import { propertyNeedsHalted } from "../vms/vm-errors";
import { globalPropertyNotFound } from "../vms/properties/property-errors";
import type { PropertyResolver } from "../vms/properties/property-resolver";
import { findGlobalSpec, GLOBAL_PROPERTIES, vmPropertiesFollowing, type PropertySpec, type PropertyValue } from "../vms/properties/property-schema";
import { eventText } from "../vms/properties/property-text";
import type { Property, PropertyDescription } from "../vms/properties/vm-properties";
import { propertyReset, propertySet } from "../vms/vm-events";

/** The VM properties that may follow a global property, and their values, VM by VM. */
interface FollowerValues {
  followers: readonly PropertySpec[];
  vms: readonly VmRecord[];
  values: readonly (string | undefined)[];
}

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
      const before = this.vmDefaults(name);
      this.store.globals.set(name, this.resolver.encode(spec, value, target));
      const now = this.resolver.global(spec);
      this.events.append(propertySet(HOST_SUBJECT, name, eventText(now.value), eventText(old.value)));
      this.tellFollowers(name, before);
      // The VMs that take default_netvm follow it: their chains may come back on themselves.
      if (name === "default_netvm") refuseNetvmLoops(this.store, this.resolver.snapshot());
      if (name === "default_template") this.requireTemplateSuitsFollowers();
      return now;
    });
  }

  reset(name: string, _ctx: CallContext): Property {
    return this.store.transaction(() => {
      const spec = specOf(name);
      const old = this.resolver.global(spec);
      const before = this.vmDefaults(name);
      if (this.store.globals.delete(name)) {
        this.events.append(propertyReset(HOST_SUBJECT, name, eventText(old.value)));
        this.tellFollowers(name, before);
      }
      if (name === "default_template") this.requireTemplateSuitsFollowers();
      return this.resolver.global(spec);
    });
  }

  /**
   * Each VM's value, as event text, of the properties it takes by default that may follow the
   * global property `global` (vmPropertiesFollowing), flat: VM by VM, then property by property,
   * undefined where the VM sets the property or its class has none. (Flat, not a map per VM: a
   * global change reads every VM twice, 10,000 of them at a time.)
   */
  private vmDefaults(global: string): FollowerValues {
    const followers = vmPropertiesFollowing(global).filter((spec) => !spec.live);
    const vms = followers.length === 0 ? [] : this.store.vms.all();
    const values: (string | undefined)[] = [];
    const resolver = this.resolver.snapshot();
    for (const vm of vms) {
      for (const spec of followers) {
        const takesDefault = vm.properties[spec.name] === undefined && (spec.classes?.includes(vm.klass) ?? true);
        values.push(takesDefault ? eventText(resolver.vm(vm, spec).value) : undefined);
      }
    }
    return { followers, vms, values };
  }

  /**
   * Tells, as Qubes does (property-reset:<name> with its old value), of each VM property that a
   * global change gave another value by way of its default: default_netvm changes the netvm (and
   * the addresses) of the VMs that take it, default_kernel their kernel, and so on.
   */
  private tellFollowers(global: string, before: FollowerValues): void {
    if (before.vms.length === 0) return;
    const after = this.vmDefaults(global);
    const width = before.followers.length;
    // No VM comes or goes within the transaction: both readings list the same VMs, in order.
    after.vms.forEach((vm, i) => {
      for (let j = 0; j < width; j++) {
        const old = before.values[i * width + j];
        if (old === undefined || old === after.values[i * width + j]) continue;
        const property = before.followers[j].name;
        if (property === "template") this.refuseTemplateChange(vm);
        this.events.append(propertyReset(vm, property, old));
      }
    });
  }

  /**
   * The VMs that take default_template follow it: it must be a template of their kind, and the
   * memory they take from it must stay within their maxmem.
   */
  private requireTemplateSuitsFollowers(): void {
    const resolver = this.resolver.snapshot();
    requireCoherentTemplates(this.store, resolver);
    requireMemoryWithinMaxmemEverywhere(this.store, resolver);
  }

  /**
   * A template changes only while its VM is halted, and not under the DispVMs based on it that
   * run: by way of default_template as much as by SetProperty.
   */
  private refuseTemplateChange(vm: VmRecord): void {
    const state = this.powerStates.of(vm);
    if (state !== "Halted") throw propertyNeedsHalted(vm, "template", state);
    refuseIfDispvmsRun(this.store, vm, (other) => this.powerStates.of(other) !== "Halted");
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
