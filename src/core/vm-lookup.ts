import type { Store, VmRecord } from "../ports/store";
import { notFound, type DomainError } from "./errors";
import { describeRef, parseVmRef, type VmRef } from "./vm-names";

/** Finds the VM a request names: by name, or by `uuid:<uuid>`. */
export class VmLookup {
  constructor(private readonly store: Store) {}

  /** The stored VM named by the request field `field`; NOT_FOUND (VM_NOT_FOUND) when none. */
  resolve(text: string, field = "vm"): VmRecord {
    const ref = parseVmRef(text, field);
    const record = this.byRef(ref);
    if (!record) throw vmNotFound(describeRef(ref), field);
    return record;
  }

  /** The stored VM, or undefined when there is none; a malformed reference is still refused. */
  find(text: string, field = "vm"): VmRecord | undefined {
    return this.byRef(parseVmRef(text, field));
  }

  private byRef(ref: VmRef): VmRecord | undefined {
    return "name" in ref ? this.store.vms.byName(ref.name) : this.store.vms.byUuid(ref.uuid);
  }
}

export function vmNotFound(ref: string, field = "vm"): DomainError {
  return notFound("VM_NOT_FOUND", `no VM ${ref.startsWith("uuid:") ? "with " + ref : "named " + ref}`, { vm: ref, field });
}
