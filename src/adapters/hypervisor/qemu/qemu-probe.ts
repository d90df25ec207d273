import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

export const QEMU_BINARY = "qemu-system-x86_64";

export interface QemuInstallation {
  binary: string;
  /** The first line of `qemu-system-x86_64 --version`. */
  version: string;
  /** Whether /dev/kvm can be opened for reading and writing by this process. */
  kvm: boolean;
}

/** Finds QEMU on the PATH and tells whether KVM is usable; undefined when QEMU is absent. */
export function probeQemu(searchPath = process.env.PATH ?? "", kvmDevice = "/dev/kvm"): QemuInstallation | undefined {
  const binary = findOnPath(QEMU_BINARY, searchPath);
  if (!binary) return undefined;
  const version = execFileSync(binary, ["--version"], { encoding: "utf8", timeout: 10_000 }).split("\n")[0].trim();
  return { binary, version, kvm: canOpenReadWrite(kvmDevice) };
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
