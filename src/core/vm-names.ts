import { InvalidFieldError } from "./errors";

/** How a request names a VM: by name, or by UUID as `uuid:<uuid>`. */
export type VmRef = { name: string } | { uuid: string };

const VM_NAME = /^[A-Za-z][A-Za-z0-9_.-]*$/;
const MAX_VM_NAME = 31;
const RESERVED_NAMES = new Set(["none", "default"]);
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/**
 * Checks a new VM name against Qubes' rule, which also makes it a valid host name:
 * a letter, then letters, digits, `_`, `.` or `-`; at most 31 characters; not none or default.
 */
export function checkVmName(name: string, field: string): string {
  if (name === "") throw new InvalidFieldError(field, "a VM name is required", "INVALID_VM_NAME");
  if (name.length > MAX_VM_NAME) throw new InvalidFieldError(field, `VM names have at most ${MAX_VM_NAME} characters`, "INVALID_VM_NAME");
  if (!VM_NAME.test(name)) {
    throw new InvalidFieldError(field, "VM names start with a letter, then letters, digits, '_', '.' or '-'", "INVALID_VM_NAME");
  }
  if (RESERVED_NAMES.has(name.toLowerCase())) throw new InvalidFieldError(field, `'${name}' cannot name a VM`, "INVALID_VM_NAME");
  return name;
}

/** Parses how a request names a VM: its name, or `uuid:<uuid>`. */
export function parseVmRef(text: string, field: string): VmRef {
  if (text.startsWith("uuid:")) {
    const uuid = text.slice("uuid:".length);
    if (!UUID.test(uuid)) throw new InvalidFieldError(field, "expected uuid:xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", "INVALID_VM_REF");
    return { uuid: uuid.toLowerCase() };
  }
  return { name: checkVmName(text, field) };
}

export function describeRef(ref: VmRef): string {
  return "name" in ref ? ref.name : `uuid:${ref.uuid}`;
}
