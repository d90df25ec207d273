import type { NewEvent } from "../model/event";
import type { LabelRecord } from "../model/label";

/**
 * The events of VMs and their attributes, in Qubes' names, each built by one constructor so
 * that its name and kwargs are the same wherever it is told (appended through EventLog).
 */

interface Named {
  name: string;
}

export function domainAdd(vm: Named): NewEvent {
  return { subject: vm.name, name: "domain-add", kwargs: { vm: vm.name } };
}

export function domainDelete(vm: Named): NewEvent {
  return { subject: vm.name, name: "domain-delete", kwargs: { vm: vm.name } };
}

export function domainTagAdd(vm: Named, tag: string): NewEvent {
  return { subject: vm.name, name: `domain-tag-add:${tag}`, kwargs: { tag } };
}

export function domainTagDelete(vm: Named, tag: string): NewEvent {
  return { subject: vm.name, name: `domain-tag-delete:${tag}`, kwargs: { tag } };
}

/** A feature set; `old` is its value before, when it had one. */
export function domainFeatureSet(vm: Named, feature: string, value: string, old: string | undefined): NewEvent {
  const kwargs: Record<string, string> = { feature, value };
  if (old !== undefined) kwargs.oldvalue = old;
  return { subject: vm.name, name: `domain-feature-set:${feature}`, kwargs };
}

export function domainFeatureDelete(vm: Named, feature: string): NewEvent {
  return { subject: vm.name, name: `domain-feature-delete:${feature}`, kwargs: { feature } };
}

/** A property set, of a VM or (subject "") of the host; values as event text (eventText). */
export function propertySet(subject: string, property: string, newvalue: string, oldvalue: string): NewEvent {
  return { subject, name: `property-set:${property}`, kwargs: { name: property, newvalue, oldvalue } };
}

export function propertyReset(subject: string, property: string, oldvalue: string): NewEvent {
  return { subject, name: `property-reset:${property}`, kwargs: { name: property, oldvalue } };
}

/** A VM renamed: Qubes tells it as its name property set, under the new name. */
export function domainRenamed(oldName: string, newName: string): NewEvent {
  return propertySet(newName, "name", newName, oldName);
}

export function labelAdd(label: LabelRecord, color: string): NewEvent {
  return { subject: "", name: "label-add", kwargs: { label: label.name, color, index: String(label.index) } };
}

export function labelDelete(label: string): NewEvent {
  return { subject: "", name: "label-delete", kwargs: { label } };
}
