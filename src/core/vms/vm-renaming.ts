import type { Store } from "../../ports/store";
import type { EventLog } from "../events/event-log";
import { vmClass } from "../model/vm-classes";
import type { CallContext } from "../shared/call-context";
import type { PowerStates } from "./power-states";
import type { VmReadModel } from "./read-model/vm-read-model";
import type { Vm } from "./read-model/vm-view";
import { vmClassRefuses } from "./vm-errors";
import { requireFreeName } from "./vm-names-in-use";
import { domainRenamed } from "./vm-events";
import { checkVmName } from "./vm-names";
import type { VmOperations } from "./vm-operations";
import type { VmTarget } from "./vm-etag";

/** Renaming VMs (Qubes' admin.vm.property.Set name): only halted ones. */
export class VmRenaming {
  constructor(
    private readonly store: Store,
    private readonly readModel: VmReadModel,
    private readonly powerStates: PowerStates,
    private readonly operations: VmOperations,
    private readonly events: EventLog,
  ) {}

  /** Renames a halted VM; references to it follow, as they hold its qid. Idempotent. */
  rename(text: VmTarget, newNameText: string, ctx: CallContext): Promise<Vm> {
    const newName = checkVmName(newNameText, "new_name");
    return this.operations.on(text, "vm", ctx, "rename it", (record) =>
      this.store.transaction(() => {
        if (record.name === newName) return this.readModel.full(record);
        if (!vmClass(record.klass).renamable) throw vmClassRefuses(record, "renamed");
        this.powerStates.requireHalted(record, "renamed");
        requireFreeName(this.store, newName, record.qid);
        this.store.vms.rename(record.qid, newName);
        this.events.append(domainRenamed(record, newName));
        return this.readModel.full(this.store.vms.byQid(record.qid)!);
      }),
    );
  }
}
