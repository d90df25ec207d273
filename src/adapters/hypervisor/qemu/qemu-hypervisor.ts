import type { Hypervisor, HypervisorInfo, PowerState } from "../../../ports/hypervisor";
import type { QemuInstallation } from "./qemu-probe";

/** QEMU: KVM when /dev/kvm is usable, else TCG software emulation. */
export class QemuHypervisor implements Hypervisor {
  constructor(private readonly installation: QemuInstallation) {}

  info(): HypervisorInfo {
    const { kvm, version } = this.installation;
    return { kind: kvm ? "qemu-kvm" : "qemu-tcg", version, capabilities: kvm ? ["kvm"] : [] };
  }

  /** No VM runs yet: starting VMs comes with the lifecycle. */
  powerState(_uuid: string): PowerState {
    return "Halted";
  }

  startTime(_uuid: string): Date | undefined {
    return undefined;
  }
}
