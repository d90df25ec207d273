import type { Store } from "../../ports/store";
import type { EventLog } from "../events/event-log";
import type { NewEvent } from "../model/event";
import type { VmRecord } from "../model/vm-record";
import type { CallContext } from "../shared/call-context";
import { invalidTag } from "./vm-errors";
import { domainTagAdd, domainTagDelete } from "./vm-events";
import type { VmLookup } from "./vm-lookup";
import type { VmOperations } from "./vm-operations";

const TAG = /^[A-Za-z0-9_.:-]{1,255}$/;

/** A VM's tags (Qubes' vm.tag.*): free words that policies and filters select VMs by. */
export class VmTags {
  constructor(
    private readonly store: Store,
    private readonly vms: VmLookup,
    private readonly operations: VmOperations,
    private readonly events: EventLog,
  ) {}

  list(vm: string): readonly string[] {
    return this.vms.resolve(vm).tags;
  }

  has(vm: string, tag: string): boolean {
    return this.vms.resolve(vm).tags.includes(checkTag(tag));
  }

  /** Adds a tag; false when the VM had it. Idempotent. */
  add(vm: string, tag: string, ctx: CallContext): Promise<boolean> {
    return this.change(vm, tag, ctx, (record) => this.store.vms.addTag(record.qid, tag) && domainTagAdd(record, tag));
  }

  /** Removes a tag; false when the VM did not have it. Idempotent. */
  remove(vm: string, tag: string, ctx: CallContext): Promise<boolean> {
    return this.change(vm, tag, ctx, (record) => this.store.vms.removeTag(record.qid, tag) && domainTagDelete(record, tag));
  }

  /** Applies a change, and tells of it only when it changed something (`apply` returns its event). */
  private async change(vm: string, tag: string, ctx: CallContext, apply: (record: VmRecord) => NewEvent | false): Promise<boolean> {
    checkTag(tag);
    return this.operations.on(vm, "vm", ctx, "change its tags", (record) =>
      this.store.transaction(() => {
        const event = apply(record);
        if (event) this.events.append(event);
        return event !== false;
      }),
    );
  }
}

function checkTag(tag: string): string {
  if (!TAG.test(tag)) throw invalidTag();
  return tag;
}
