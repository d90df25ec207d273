import { HOST_SUBJECT, type EventSubject, type NewEvent } from "../model/event";
import type { LabelRecord } from "../model/label";

/**
 * The events of VMs and their attributes, in Qubes' names, each built by one constructor so
 * that its name and kwargs are the same wherever it is told (appended through EventLog). Each
 * carries its VM's name and uuid.
 */

function about(vm: EventSubject, name: string, kwargs: Readonly<Record<string, string>>): NewEvent {
  return { subject: vm.name, subjectUuid: vm.uuid, name, kwargs };
}

export function domainAdd(vm: EventSubject): NewEvent {
  return about(vm, "domain-add", { vm: vm.name });
}

export function domainDelete(vm: EventSubject): NewEvent {
  return about(vm, "domain-delete", { vm: vm.name });
}

export function domainTagAdd(vm: EventSubject, tag: string): NewEvent {
  return about(vm, `domain-tag-add:${tag}`, { tag });
}

export function domainTagDelete(vm: EventSubject, tag: string): NewEvent {
  return about(vm, `domain-tag-delete:${tag}`, { tag });
}

/** A feature set; `old` is its value before, when it had one. */
export function domainFeatureSet(vm: EventSubject, feature: string, value: string, old: string | undefined): NewEvent {
  const kwargs: Record<string, string> = { feature, value };
  if (old !== undefined) kwargs.oldvalue = old;
  return about(vm, `domain-feature-set:${feature}`, kwargs);
}

export function domainFeatureDelete(vm: EventSubject, feature: string): NewEvent {
  return about(vm, `domain-feature-delete:${feature}`, { feature });
}

/** A VM's notes replaced; the notes themselves (up to 256 KiB) are read with GetNotes. */
export function domainNotesSet(vm: EventSubject, bytes: number): NewEvent {
  return about(vm, "domain-notes-set", { bytes: String(bytes) });
}

/** A property set, of a VM or (HOST_SUBJECT) of the host; values as event text (eventText). */
export function propertySet(subject: EventSubject, property: string, newvalue: string, oldvalue: string): NewEvent {
  return about(subject, `property-set:${property}`, { name: property, newvalue, oldvalue });
}

export function propertyReset(subject: EventSubject, property: string, oldvalue: string): NewEvent {
  return about(subject, `property-reset:${property}`, { name: property, oldvalue });
}

/** A VM renamed: Qubes tells it as its name property set, under the new name. */
export function domainRenamed(vm: EventSubject, newName: string): NewEvent {
  return propertySet({ name: newName, uuid: vm.uuid }, "name", newName, vm.name);
}

export function labelAdd(label: LabelRecord, color: string): NewEvent {
  return about(HOST_SUBJECT, "label-add", { label: label.name, color, index: String(label.index) });
}

export function labelDelete(label: string): NewEvent {
  return about(HOST_SUBJECT, "label-delete", { label });
}
