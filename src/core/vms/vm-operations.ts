import type { VmRecord } from "../model/vm-record";
import type { CallContext } from "../shared/call-context";
import { KeyedQueue } from "../shared/keyed-queue";
import { requireEtag, splitTarget, type VmTarget } from "./vm-etag";
import type { VmLookup } from "./vm-lookup";

/** Stands for "the VM the request named is another VM now": look it up, and queue, again. */
const ANOTHER_VM = Symbol("another VM");

/**
 * One operation per VM at a time. Every mutation of a VM (its lifecycle, removal, renaming,
 * cloning from it, its properties, features, tags and notes) runs here, in the order the calls
 * came; reads never wait; different VMs proceed side by side. The VM a request names is looked
 * up again once its turn comes, so an operation never acts on what an earlier one removed or
 * renamed away. New VMs are not made here: NewVms reserves what each one takes while it is made.
 */
export class VmOperations {
  private readonly queue = new KeyedQueue();

  constructor(private readonly lookup: VmLookup) {}

  /**
   * Runs `work` on the VM that `target` names (field `field` of the request), in its turn, once
   * the VM is found to have the etag the target expects, if any (else ABORTED, ETAG_MISMATCH).
   * `heldBy` is the VM whose operation asks for this one, when they nest (a start of a VM's
   * netvm): a wait that would close a circle is refused (ABORTED).
   */
  async on<T>(target: VmTarget, field: string, ctx: CallContext, what: string, work: (vm: VmRecord) => T | Promise<T>, heldBy?: VmRecord): Promise<T> {
    const { vm: text, etag } = splitTarget(target);
    for (;;) {
      const vm = this.lookup.resolve(text, field);
      const result = await this.queue.run(vm.uuid, { caller: ctx, what, heldBy: heldBy?.uuid }, () => {
        const now = this.lookup.resolve(text, field);
        if (now.uuid !== vm.uuid) return ANOTHER_VM;
        requireEtag(now, etag);
        return work(now);
      });
      if (result !== ANOTHER_VM) return result;
    }
  }

  /** As on(), but undefined when the VM does not exist (or no longer does once its turn comes). */
  async onIfExists<T>(target: VmTarget, field: string, ctx: CallContext, what: string, work: (vm: VmRecord) => T | Promise<T>): Promise<T | undefined> {
    const { vm: text, etag } = splitTarget(target);
    for (;;) {
      const vm = this.lookup.find(text, field);
      if (!vm) return undefined;
      const result = await this.queue.run(vm.uuid, { caller: ctx, what }, () => {
        const now = this.lookup.find(text, field);
        if (!now) return undefined;
        if (now.uuid !== vm.uuid) return ANOTHER_VM;
        requireEtag(now, etag);
        return work(now);
      });
      if (result !== ANOTHER_VM) return result;
    }
  }

  /**
   * Runs `work` on the VM with this uuid before any other operation that waits for it (once the
   * one running now is done): settling a VM that just halted comes before whatever was asked of
   * it meanwhile. `work` gets undefined when the VM is gone by then.
   */
  next<T>(uuid: string, what: string, work: (vm: VmRecord | undefined) => T | Promise<T>): Promise<T> {
    return this.queue.run(uuid, { what, next: true }, () => work(this.lookup.find(`uuid:${uuid}`)));
  }

  /** Whether an operation runs on the VM now. */
  busy(uuid: string): boolean {
    return this.queue.busy(uuid);
  }
}
