import type { Store } from "../../ports/store";
import type { VmRecord } from "../model/vm-record";
import { vmNotFound } from "./vm-errors";
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
