import type { Store } from "../../ports/store";
import type { EventLog } from "../events/event-log";
import { domainNotesSet } from "./vm-events";
import type { CallContext } from "../shared/call-context";
import { invalidNotes, notesTooLong } from "./vm-errors";
import type { VmLookup } from "./vm-lookup";
import type { VmOperations } from "./vm-operations";

/** Qubes' limit on a VM's notes. */
export const MAX_NOTES_BYTES = 256 * 1024;
/**
 * Text for people: no control characters (C0 and C1) but tab and newline, and none of the
 * bidirectional marks, embeddings, overrides and isolates that make text read otherwise than
 * it is stored ("Trojan Source").
 */
// eslint-disable-next-line no-control-regex -- the control characters are what the pattern finds
const FORBIDDEN = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;

/** A VM's notes (Qubes' vm.notes.*): free text for people. */
export class VmNotes {
  constructor(
    private readonly store: Store,
    private readonly vms: VmLookup,
    private readonly operations: VmOperations,
    private readonly events: EventLog,
  ) {}

  get(vm: string): string {
    return this.store.vms.notes(this.vms.resolve(vm).qid);
  }

  async set(vm: string, notes: string, ctx: CallContext): Promise<void> {
    if (Buffer.byteLength(notes) > MAX_NOTES_BYTES) throw notesTooLong(MAX_NOTES_BYTES);
    if (FORBIDDEN.test(notes)) throw invalidNotes();
    await this.operations.on(vm, "vm", ctx, "set its notes", (record) =>
      this.store.transaction(() => {
        if (this.store.vms.notes(record.qid) === notes) return;
        this.store.vms.setNotes(record.qid, notes);
        this.events.append(domainNotesSet(record, Buffer.byteLength(notes)));
      }),
    );
  }
}
