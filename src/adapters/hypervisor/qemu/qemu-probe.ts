import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

export const QEMU_BINARY = "qemu-system-x86_64";

export interface QemuInstallation {
  binary: string;
  /** The first line of `qemu-system-x86_64 --version`. */
  version: string;
  /** Whether KVM can run ordinary guests here: QEMU runs with -accel kvm when it can, else TCG. */
  kvm: boolean;
  /** Why KVM is not used, when it is not. */
  kvmUnusable?: string;
}

/** Where the probe reads the host's facts; tests point it at files of their own. */
export interface ProbeSources {
  searchPath: string;
  kvmDevice: string;
  cpuinfo: string;
}

const HOST_SOURCES: ProbeSources = { searchPath: process.env.PATH ?? "", kvmDevice: "/dev/kvm", cpuinfo: "/proc/cpuinfo" };

/** Finds QEMU on the PATH and tells whether KVM is usable; undefined when QEMU is absent. */
export function probeQemu(sources: Partial<ProbeSources> = {}): QemuInstallation | undefined {
  const { searchPath, kvmDevice, cpuinfo } = { ...HOST_SOURCES, ...sources };
  const binary = findOnPath(QEMU_BINARY, searchPath);
  if (!binary) return undefined;
  const version = execFileSync(binary, ["--version"], { encoding: "utf8", timeout: 10_000 }).split("\n")[0].trim();
  const kvmUnusable = whyKvmUnusable(kvmDevice, cpuinfo);
  return { binary, version, kvm: kvmUnusable === undefined, ...(kvmUnusable === undefined ? {} : { kvmUnusable }) };
}

/**
 * Why KVM cannot run an ordinary guest here, or undefined when it can: the device must open
 * for reading and writing, and the CPU must offer hardware virtualization (vmx or svm), as
 * libvirt's virt-host-validate checks. A /dev/kvm without it (a nested host's paravirtual
 * KVM, such as PVM) runs only guest kernels built for it, and would hang a stock kernel.
 */
function whyKvmUnusable(device: string, cpuinfo: string): string | undefined {
  if (!canOpenReadWrite(device)) return `${device} cannot be opened for reading and writing`;
  let flags: string;
  try {
    flags = fs.readFileSync(cpuinfo, "utf8");
  } catch {
    return `${cpuinfo} cannot be read, so hardware virtualization cannot be checked`;
  }
  if (!/^flags\s*:.*\b(vmx|svm)\b/m.test(flags)) return `the CPU offers no hardware virtualization (no vmx or svm flag in ${cpuinfo}); ${device} here runs only guests built for it`;
  return undefined;
}

function findOnPath(name: string, searchPath: string): string | undefined {
  for (const dir of searchPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not in this folder
    }
  }
  return undefined;
}

function canOpenReadWrite(device: string): boolean {
  try {
    fs.closeSync(fs.openSync(device, fs.constants.O_RDWR));
    return true;
  } catch {
    return false;
  }
}
