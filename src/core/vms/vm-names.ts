import { isUuid } from "../shared/uuid";
import { invalidUuid, invalidVmName, invalidVmRef } from "./vm-errors";

/** How a request names a VM: by name, or by UUID as `uuid:<uuid>`. */
export type VmRef = { name: string } | { uuid: string };

const VM_NAME = /^[A-Za-z][A-Za-z0-9.-]*$/;
const MAX_VM_NAME = 31;
// Qubes keeps Domain-0 too: the name Xen gives dom0.
const RESERVED_NAMES = new Set(["none", "default", "domain-0"]);

/**
 * Checks a new VM name against Qubes' rule and systemd-machined's rule for host names (its
 * hostname_is_valid), since a VM's name is its guest's host name: a letter, then letters, digits,
 * `.` or `-` (no `_`, which no host name holds); at most 31 characters; dot-separated labels
 * that are not empty (no `..`, no `.` at the end) and neither start nor end with `-`; not ending
 * in `-dm` (Qubes keeps that for a VM's device model); not none, default or Domain-0. (That no two names
 * differ only in case is the store's to check, against the others.)
 */
export function checkVmName(name: string, field: string): string {
  if (name === "") throw invalidVmName(field, "a VM name is required");
  if (name.length > MAX_VM_NAME) throw invalidVmName(field, `VM names have at most ${MAX_VM_NAME} characters`);
  if (!VM_NAME.test(name)) {
    throw invalidVmName(field, "VM names are host names: a letter, then letters, digits, '.' or '-'");
  }
  if (name.includes("..") || name.endsWith(".")) throw invalidVmName(field, "VM names are host names: no '..', and no '.' at the end");
  if (/(^|\.)-|-(\.|$)/.test(name)) throw invalidVmName(field, "VM names are host names: no part between dots starts or ends with '-'");
  if (name.toLowerCase().endsWith("-dm")) throw invalidVmName(field, "VM names do not end in '-dm', which Qubes keeps for a VM's device model");
  if (RESERVED_NAMES.has(name.toLowerCase())) throw invalidVmName(field, `'${name}' cannot name a VM`);
  return name;
}

/** The nil UUID, which names nothing (machined takes it as "none given"). */
const NIL_UUID = "00000000-0000-0000-0000-000000000000";

/** A UUID a client chose for a new VM, lower-cased; undefined for none (empty). */
export function checkChosenUuid(text: string, field: string): string | undefined {
  if (text === "") return undefined;
  if (!isUuid(text)) throw invalidUuid(field, "expected a UUID: xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx");
  const uuid = text.toLowerCase();
  if (uuid === NIL_UUID) throw invalidUuid(field, "the nil UUID names no VM: leave it empty for one Steward makes");
  return uuid;
}

/** Parses how a request names a VM: its name, or `uuid:<uuid>`. */
export function parseVmRef(text: string, field: string): VmRef {
  if (text.startsWith("uuid:")) {
    const uuid = text.slice("uuid:".length);
    if (!isUuid(uuid)) throw invalidVmRef(field);
    return { uuid: uuid.toLowerCase() };
  }
  return { name: checkVmName(text, field) };
}

export function describeRef(ref: VmRef): string {
  return "name" in ref ? ref.name : `uuid:${ref.uuid}`;
}
