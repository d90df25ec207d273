import type { RunningVm } from "../../ports/hypervisor";
import type { PowerState } from "../model/power-state";
import type { CallContext } from "../shared/call-context";
import type { VmLookup } from "../vms/vm-lookup";
import type { VmOperations } from "../vms/vm-operations";
import type { PowerMachine } from "./power-machine";
import type { PowerAction } from "./power-transitions";
import type { RunningVms } from "./running-vms";

/** Pausing and suspending running VMs, and bringing them back. */
export class VmPause {
  constructor(
    private readonly lookup: VmLookup,
    private readonly operations: VmOperations,
    private readonly machine: PowerMachine,
    private readonly running: RunningVms,
  ) {}

  pause(text: string, ctx: CallContext): Promise<PowerState> {
    return this.act(text, "pause", ctx, (handle) => handle.pause());
  }

  unpause(text: string, ctx: CallContext): Promise<PowerState> {
    return this.act(text, "unpause", ctx, (handle) => handle.unpause());
  }

  suspend(text: string, ctx: CallContext): Promise<PowerState> {
    return this.act(text, "suspend", ctx, (handle) => handle.suspend());
  }

  resume(text: string, ctx: CallContext): Promise<PowerState> {
    return this.act(text, "resume", ctx, (handle) => handle.resume());
  }

  private async act(text: string, action: PowerAction, ctx: CallContext, act: (handle: RunningVm) => Promise<void>): Promise<PowerState> {
    this.machine.allow(this.lookup.resolve(text), action);
    return this.operations.on(text, "vm", ctx, `${action} it`, async (record) => {
      this.machine.allow(record, action);
      await act(this.running.handle(record.uuid)!);
      // The guest may have told the change already (its event came first): then this adds nothing.
      this.machine.move(record, action);
      return this.machine.state(record);
    });
  }
}
