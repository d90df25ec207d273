import { DomainError } from "../../../core/errors";
import type { Hypervisor, HypervisorInfo, PowerState, StartSpec } from "../../../ports/hypervisor";
import type { QemuInstallation } from "./qemu-probe";

/** QEMU: KVM when /dev/kvm is usable, else TCG software emulation. */
export class QemuHypervisor implements Hypervisor {
  constructor(private readonly installation: QemuInstallation) {}

  info(): HypervisorInfo {
    const { kvm, version } = this.installation;
    return { kind: kvm ? "qemu-kvm" : "qemu-tcg", version, capabilities: kvm ? ["kvm"] : [] };
  }

  /** No VM runs under QEMU yet. */
  powerState(_uuid: string): PowerState {
    return "Halted";
  }

  startTime(_uuid: string): Date | undefined {
    return undefined;
  }

  // Running guests under QEMU comes with the QEMU adapter; until then it says so.
  async start(spec: StartSpec): Promise<void> {
    throw new DomainError(
      "not-implemented",
      "NOT_IMPLEMENTED",
      `cannot start ${spec.name}: running VMs under QEMU is not implemented yet; use --hypervisor sim until it is`,
      { vm: spec.name },
    );
  }

  async shutdown(_uuid: string): Promise<void> {}

  async kill(_uuid: string): Promise<void> {}

  async pause(_uuid: string): Promise<void> {}

  async unpause(_uuid: string): Promise<void> {}

  async suspend(_uuid: string): Promise<void> {}

  async resume(_uuid: string): Promise<void> {}

  onHalted(_listener: (uuid: string) => void): void {}
}
