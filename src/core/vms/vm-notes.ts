import type { Store } from "../../ports/store";
import type { CallContext } from "../shared/call-context";
import { invalidNotes, notesTooLong } from "./vm-errors";
import type { VmLookup } from "./vm-lookup";
import type { VmOperations } from "./vm-operations";

/** Qubes' limit on a VM's notes. */
export const MAX_NOTES_BYTES = 256 * 1024;
// Text: no control characters but tab and newline.
// eslint-disable-next-line no-control-regex -- the control characters are what the pattern finds
const FORBIDDEN = /[\x00-\x08\x0b-\x1f\x7f]/;

/** A VM's notes (Qubes' vm.notes.*): free text for people. */
export class VmNotes {
  constructor(
    private readonly store: Store,
    private readonly vms: VmLookup,
    private readonly operations: VmOperations,
  ) {}

  get(vm: string): string {
    return this.store.vms.notes(this.vms.resolve(vm).qid);
  }

  async set(vm: string, notes: string, ctx: CallContext): Promise<void> {
    if (Buffer.byteLength(notes) > MAX_NOTES_BYTES) throw notesTooLong(MAX_NOTES_BYTES);
    if (FORBIDDEN.test(notes)) throw invalidNotes();
    await this.operations.on(vm, "vm", ctx, "set its notes", (record) => this.store.transaction(() => this.store.vms.setNotes(record.qid, notes)));
  }
}
