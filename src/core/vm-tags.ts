import type { Clock } from "../ports/clock";
import type { Store } from "../ports/store";
import { InvalidFieldError } from "./errors";
import type { VmLookup } from "./vm-lookup";

const TAG = /^[A-Za-z0-9_.:-]{1,255}$/;

/** A VM's tags (Qubes' vm.tag.*): free words that policies and filters select VMs by. */
export class VmTags {
  constructor(
    private readonly store: Store,
    private readonly vms: VmLookup,
    private readonly clock: Clock,
  ) {}

  list(vm: string): readonly string[] {
    return this.vms.resolve(vm).tags;
  }

  has(vm: string, tag: string): boolean {
    return this.vms.resolve(vm).tags.includes(checkTag(tag));
  }

  /** Adds a tag; false when the VM had it. Idempotent. */
  add(vm: string, tag: string): boolean {
    return this.change(vm, tag, "domain-tag-add", (qid) => this.store.vms.addTag(qid, tag));
  }

  /** Removes a tag; false when the VM did not have it. Idempotent. */
  remove(vm: string, tag: string): boolean {
    return this.change(vm, tag, "domain-tag-delete", (qid) => this.store.vms.removeTag(qid, tag));
  }

  /** Applies a change, and tells of it only when it changed something. */
  private change(vm: string, tag: string, event: string, apply: (qid: number) => boolean): boolean {
    checkTag(tag);
    return this.store.transaction(() => {
      const record = this.vms.resolve(vm);
      const changed = apply(record.qid);
      if (changed) this.store.events.append({ subject: record.name, name: `${event}:${tag}`, kwargs: { tag } }, this.clock.now());
      return changed;
    });
  }
}

function checkTag(tag: string): string {
  if (!TAG.test(tag)) throw new InvalidFieldError("tag", "tags are 1 to 255 of letters, digits, '_', '.', ':' or '-'", "INVALID_TAG");
  return tag;
}
