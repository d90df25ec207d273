import type { Store } from "../../ports/store";
import type { EventLog } from "../events/event-log";
import type { NewEvent } from "../model/event";
import type { VmRecord } from "../model/vm-record";
import type { CallContext } from "../shared/call-context";
import { invalidTag, tagReserved, tooManyTags } from "./vm-errors";
import { domainTagAdd, domainTagDelete } from "./vm-events";
import type { VmLookup } from "./vm-lookup";
import type { VmOperations } from "./vm-operations";
import type { VmTarget } from "./vm-etag";

const TAG = /^[A-Za-z0-9_.:-]{1,255}$/;
const MAX_TAG = 255;
/** The most tags a VM has, created-by included. */
export const MAX_TAGS = 256;
/** The tags Steward sets itself, on the VMs a caller makes: no request sets or removes them. */
const CREATED_BY = "created-by-";
/** What a caller's identity may hold as it is in a tag; the rest is written as _XX. */
const TAG_SAFE = /[A-Za-z0-9.:-]/;

/**
 * The tag that says who made a VM: created-by-<caller>. A caller's characters that a tag may not
 * hold (and "_", so that decoding is not ambiguous) are written as "_" and their UTF-8 bytes in
 * hex: any caller gives one valid tag, which a request can then name. An identity too long for a
 * tag is cut to fit.
 */
export function createdByTag(caller: string): string {
  let encoded = "";
  for (const char of caller) {
    if (TAG_SAFE.test(char)) encoded += char;
    else for (const byte of new TextEncoder().encode(char)) encoded += `_${byte.toString(16).padStart(2, "0")}`;
  }
  return (CREATED_BY + encoded).slice(0, MAX_TAG);
}

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

  /** Adds a tag; false when the VM had it. Idempotent. Tags Steward sets itself are refused. */
  add(vm: VmTarget, tag: string, ctx: CallContext): Promise<boolean> {
    refuseReserved(tag);
    return this.change(vm, tag, ctx, (record) => {
      if (record.tags.length >= MAX_TAGS && !record.tags.includes(tag)) throw tooManyTags(MAX_TAGS);
      return this.store.vms.addTag(record.qid, tag) && domainTagAdd(record, tag);
    });
  }

  /** Removes a tag; false when the VM did not have it. Idempotent. Tags Steward sets itself are refused. */
  remove(vm: VmTarget, tag: string, ctx: CallContext): Promise<boolean> {
    refuseReserved(tag);
    return this.change(vm, tag, ctx, (record) => this.store.vms.removeTag(record.qid, tag) && domainTagDelete(record, tag));
  }

  /** Applies a change, and tells of it only when it changed something (`apply` returns its event). */
  private async change(vm: VmTarget, tag: string, ctx: CallContext, apply: (record: VmRecord) => NewEvent | false): Promise<boolean> {
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

/** Whether Steward set this tag itself (who made the VM). */
export function isCreatedByTag(tag: string): boolean {
  return tag.startsWith(CREATED_BY);
}

function refuseReserved(tag: string): void {
  if (tag.startsWith(CREATED_BY)) throw tagReserved(tag, CREATED_BY);
}

function checkTag(tag: string): string {
  if (!TAG.test(tag)) throw invalidTag();
  return tag;
}
