import type { Store } from "../../ports/store";
import type { EventLog } from "../events/event-log";
import { vmClass } from "../model/vm-classes";
import type { VmRecord } from "../model/vm-record";
import type { CallContext } from "../shared/call-context";
import { Revert } from "../shared/revert";
import type { PowerStates } from "./power-states";
import { GLOBAL_VM_PROPERTIES } from "./properties/property-schema";
import type { VmReadModel } from "./read-model/vm-read-model";
import { vmClassRefuses, vmInUse } from "./vm-errors";
import { domainDelete } from "./vm-events";
import type { VmOperations } from "./vm-operations";
import type { VmParticipants } from "./vm-participant";
import type { VmTarget } from "./vm-etag";

/** Properties whose value names another VM: a VM named by one of them cannot be removed. */
export const VM_REFERENCE_PROPERTIES = ["template", "netvm", "default_dispvm"] as const;

/** Removing VMs: only halted ones that nothing names, with what their participants hold. */
export class VmRemoval {
  constructor(
    private readonly store: Store,
    private readonly readModel: VmReadModel,
    private readonly powerStates: PowerStates,
    private readonly operations: VmOperations,
    private readonly participants: VmParticipants,
    private readonly events: EventLog,
  ) {}

  /** Removes a halted VM that nothing uses; with allowMissing, a missing VM is success. */
  async remove(text: VmTarget, allowMissing: boolean, ctx: CallContext): Promise<void> {
    if (allowMissing) await this.operations.onIfExists(text, "vm", ctx, "remove it", (record) => this.removeHeld(record, ctx));
    else await this.operations.on(text, "vm", ctx, "remove it", (record) => this.removeHeld(record, ctx));
  }

  /**
   * Removes the VM unless something names it; for work that holds the VM's operation already
   * (a DispVM that cleans itself up once halted). Returns whether it removed it.
   */
  async removeUnlessUsed(record: VmRecord, ctx: CallContext): Promise<boolean> {
    if (this.usersOf(record).length > 0) return false;
    await this.removeHeld(record, ctx);
    return true;
  }

  /** Removes the VM, within an operation on it. */
  private async removeHeld(record: VmRecord, ctx: CallContext): Promise<void> {
    if (!vmClass(record.klass).removable) throw vmClassRefuses(record, "removed");
    this.powerStates.requireHalted(record, "removed");
    this.refuseIfUsed(record);
    await Revert.run(
      async (revert) => {
        await this.participants.removing(record, ctx, revert);
        this.store.transaction(() => {
          // Another VM may have come to name it while its participants worked.
          this.refuseIfUsed(record);
          this.store.vms.remove(record.qid);
          this.readModel.forget(record.qid);
          this.events.append(domainDelete(record));
        });
      },
      this.participants.undoFailed(record.name, `removing ${record.name}`),
    );
    await this.participants.removed(record, ctx);
  }

  private refuseIfUsed(record: VmRecord): void {
    const users = this.usersOf(record);
    if (users.length > 0) throw vmInUse(record, users);
  }

  /** What names the VM: other VMs' template, netvm or default_dispvm, and global defaults. */
  private usersOf(record: VmRecord): string[] {
    const users = this.store.vms.referencesTo(record.qid, VM_REFERENCE_PROPERTIES).map((u) => `${u.vm} (${u.property})`);
    const globals = this.store.globals.all();
    for (const name of GLOBAL_VM_PROPERTIES) if (globals[name] === String(record.qid)) users.push(`the global ${name}`);
    return users;
  }
}
