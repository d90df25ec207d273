/**
 * What a running guest tells of itself through its agent (machined's GetMachineAddresses and
 * GetMachineOSRelease): asked of the agent each time, never guessed. A guest without an agent
 * says so (GUEST_AGENT_ABSENT), rather than seem to have no addresses.
 */
import type { GuestAddress, GuestAgentFacts } from "../../ports/hypervisor";
import { guestAgentAbsent } from "../../ports/hypervisor-errors";
import type { VmLookup } from "../vms/vm-lookup";
import type { PowerMachine } from "./power-machine";
import { capabilityMissing, vmBadState } from "./lifecycle-errors";
import type { RunningVms } from "./running-vms";

export class VmGuestFacts {
  constructor(
    private readonly lookup: VmLookup,
    private readonly machine: PowerMachine,
    private readonly running: RunningVms,
  ) {}

  addresses(text: string): Promise<GuestAddress[]> {
    return this.agentOf(text, "read the addresses").addresses();
  }

  osRelease(text: string): Promise<Record<string, string>> {
    return this.agentOf(text, "read the OS release").osRelease();
  }

  private agentOf(text: string, what: string): GuestAgentFacts {
    const vm = this.lookup.resolve(text);
    const state = this.machine.state(vm);
    // A paused or sleeping guest's agent cannot answer; a halted one has none.
    if (state !== "Running") throw vmBadState(vm, what, state);
    const handle = this.running.handle(vm.uuid);
    // The AdminVM is the host itself, which no hypervisor runs: it has no agent to ask.
    if (!handle && vm.klass === "AdminVM") throw capabilityMissing(vm, "guest agent");
    const agent = handle?.agent;
    if (!agent) throw guestAgentAbsent(vm.name, what);
    return agent;
  }
}
