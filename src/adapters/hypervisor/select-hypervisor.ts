import type { Logger } from "pino";
import type { Hypervisor } from "../../ports/hypervisor";
import { QemuHypervisor, type QemuHypervisorOptions } from "./qemu/qemu-hypervisor";
import { probeQemu, QEMU_BINARY } from "./qemu/qemu-probe";
import { SimHypervisor } from "./sim/sim-hypervisor";

export type HypervisorChoice = "auto" | "qemu" | "sim";

export class HypervisorUnavailableError extends Error {}

/** `auto` picks QEMU when it is installed, else the simulation with a warning. */
export function selectHypervisor(choice: HypervisorChoice, log: Logger, qemu: QemuHypervisorOptions): Hypervisor {
  if (choice === "sim") return new SimHypervisor();
  const installation = probeQemu();
  if (installation) {
    if (installation.kvmUnusable) log.warn({ hypervisor: "qemu-tcg", why: installation.kvmUnusable }, "KVM is not usable: QEMU runs guests under TCG, software emulation, which is much slower");
    return new QemuHypervisor(installation, qemu);
  }
  if (choice === "qemu") {
    throw new HypervisorUnavailableError(
      `--hypervisor qemu: ${QEMU_BINARY} is not on the PATH (install Debian's qemu-system-x86)`,
    );
  }
  log.warn(
    { hypervisor: "sim" },
    `${QEMU_BINARY} is not installed: using the simulated hypervisor, which runs no guest code`,
  );
  return new SimHypervisor();
}
