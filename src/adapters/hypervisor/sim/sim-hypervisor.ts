import type { Hypervisor, HypervisorInfo, PowerState } from "../../../ports/hypervisor";

/**
 * The simulated hypervisor: no guest code runs. It exists for fast tests and for hosts
 * without QEMU, and says so in GetHostInfo.
 */
export class SimHypervisor implements Hypervisor {
  info(): HypervisorInfo {
    return { kind: "sim", version: "", capabilities: [] };
  }

  /** No VM runs yet: starting VMs comes with the lifecycle. */
  powerState(_uuid: string): PowerState {
    return "Halted";
  }

  startTime(_uuid: string): Date | undefined {
    return undefined;
  }
}
