import { CONTRACT, DomainError } from "../../../core/errors";
import type { LaunchPlan } from "../../../core/model/launch-plan";
import type { Hypervisor, HypervisorInfo, RunningVm } from "../../../ports/hypervisor";
import type { QemuInstallation } from "./qemu-probe";

/** QEMU: KVM when /dev/kvm is usable, else TCG software emulation. */
export class QemuHypervisor implements Hypervisor {
  constructor(private readonly installation: QemuInstallation) {}

  info(): HypervisorInfo {
    const { kvm, version } = this.installation;
    return { kind: kvm ? "qemu-kvm" : "qemu-tcg", version, capabilities: kvm ? ["kvm"] : [] };
  }

  /** No VM runs under QEMU yet, so there is none to adopt. */
  async adopt(): Promise<RunningVm[]> {
    return [];
  }

  async release(): Promise<void> {}

  // Running guests under QEMU comes with the QEMU adapter; until then it says so.
  async launch(plan: LaunchPlan, _signal: AbortSignal): Promise<RunningVm> {
    throw new DomainError(
      "not-implemented",
      CONTRACT.NOT_IMPLEMENTED,
      `cannot start ${plan.name}: running VMs under QEMU is not implemented yet; use --hypervisor sim until it is`,
      { vm: plan.name },
    );
  }
}
