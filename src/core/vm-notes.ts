import type { Store } from "../ports/store";
import { InvalidFieldError } from "./errors";
import type { VmLookup } from "./vm-lookup";

/** Qubes' limit on a VM's notes. */
export const MAX_NOTES_BYTES = 256 * 1024;
// Text: no control characters but tab and newline.
const FORBIDDEN = /[\x00-\x08\x0b-\x1f\x7f]/;

/** A VM's notes (Qubes' vm.notes.*): free text for people. */
export class VmNotes {
  constructor(
    private readonly store: Store,
    private readonly vms: VmLookup,
  ) {}

  get(vm: string): string {
    return this.store.vms.notes(this.vms.resolve(vm).qid);
  }

  set(vm: string, notes: string): void {
    if (Buffer.byteLength(notes) > MAX_NOTES_BYTES) throw new InvalidFieldError("notes", `notes are at most ${MAX_NOTES_BYTES} bytes`, "NOTES_TOO_LONG");
    if (FORBIDDEN.test(notes)) throw new InvalidFieldError("notes", "notes are text: no control characters but tab and newline", "INVALID_NOTES");
    this.store.transaction(() => this.store.vms.setNotes(this.vms.resolve(vm).qid, notes));
  }
}
