import { vmClass } from "../model/vm-classes";
import type { VmRecord } from "../model/vm-record";
import type { CallContext } from "../shared/call-context";
import type { PropertyResolver } from "./properties/property-resolver";
import { vmSpec } from "./properties/property-schema";
import type { VmParticipant } from "./vm-participant";
import type { VmRemoval } from "./vm-removal";

/**
 * Removes a DispVM with auto_cleanup once it halted, as Qubes does. One that another VM still
 * names (as its netvm, say) stays, as it would on RemoveVm. Listed last: the other participants
 * settle the halted VM before it goes.
 */
export class DisposableCleanup implements VmParticipant {
  readonly name = "disposables";

  constructor(
    private readonly resolver: PropertyResolver,
    private readonly removal: VmRemoval,
  ) {}

  async afterHalt(vm: VmRecord, _halt: unknown, ctx: CallContext): Promise<void> {
    if (!vmClass(vm.klass).disposable || this.resolver.vm(vm, vmSpec("auto_cleanup")).value !== true) return;
    await this.removal.removeUnlessUsed(vm, ctx);
  }
}
