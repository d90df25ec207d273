import type { Property, PropertySpec, PropertyValue } from "./property-schema";

/**
 * Properties with the same spec, value and default-ness are one shared, frozen object. Listing
 * 10,000 VMs with their properties works out 260,000 of them, and most (memory, vcpus, kernel,
 * label…) have one of a few values across all the VMs: sharing them spares allocating (and
 * collecting) one object for each, and lets what is derived from a property (its encoding) be
 * kept with it. A spec that comes with MAX_VALUES_PER_SPEC distinct values has values mostly
 * distinct (uuid, ip, mac): it is shared no more, and its properties are fresh objects again.
 */

const MAX_VALUES_PER_SPEC = 64;

interface SpecValues {
  /** Shared properties by value: [0] those set on the VM, [1] those that are the default. */
  readonly byValue: [Map<PropertyValue | undefined, Property>, Map<PropertyValue | undefined, Property>];
  count: number;
}

/** The shared properties of each spec; null for a spec shared no more. */
const tables = new Map<PropertySpec, SpecValues | null>();
const shared = new WeakSet<Property>();

/** The property with this value: shared when its spec is. */
export function sharedProperty(spec: PropertySpec, value: PropertyValue | undefined, isDefault: boolean): Property {
  let table = tables.get(spec);
  if (table === null) return { spec, value, isDefault };
  if (table === undefined) tables.set(spec, (table = { byValue: [new Map<PropertyValue | undefined, Property>(), new Map<PropertyValue | undefined, Property>()], count: 0 }));
  const byValue = table.byValue[isDefault ? 1 : 0];
  let property = byValue.get(value);
  if (property) return property;
  property = { spec, value, isDefault };
  if (++table.count > MAX_VALUES_PER_SPEC) {
    tables.set(spec, null);
    return property;
  }
  byValue.set(value, Object.freeze(property));
  shared.add(property);
  return property;
}

/** Whether this property is a shared one, the same object every time its value comes back. */
export function isSharedProperty(property: Property): boolean {
  return shared.has(property);
}
