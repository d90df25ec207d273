import * as fs from "node:fs";
import * as path from "node:path";
import { probeQemu } from "../../../../../src/adapters/hypervisor/qemu/qemu-probe";
import { QemuHypervisor } from "../../../../../src/adapters/hypervisor/qemu/qemu-hypervisor";
import { makeTempDir, removeDir } from "../../../../fixtures/temp-dir";

describe("probeQemu", () => {
  let dir: string;
  beforeEach(() => (dir = makeTempDir()));
  afterEach(() => removeDir(dir));

  function fakeQemu(): string {
    const bin = path.join(dir, "bin");
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, "qemu-system-x86_64"), "#!/bin/sh\necho 'QEMU emulator version 9.9.9'\necho 'Copyright'\n", { mode: 0o755 });
    return bin;
  }

  const options = { runDir: "/nonexistent/run", kernelsDir: "/nonexistent/kernels", user: undefined };

  function cpuinfo(flags: string): string {
    const file = path.join(dir, `cpuinfo-${flags.replace(/\W/g, "_")}`);
    fs.writeFileSync(file, `processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu vme ${flags} sse2\n\n`);
    return file;
  }

  it("finds nothing when QEMU is not on the PATH", () => {
    expect(probeQemu({ searchPath: dir, kvmDevice: "/dev/null" })).toBeUndefined();
  });

  it("reads the version, and uses KVM only where the device opens and the CPU offers hardware virtualization", () => {
    const bin = fakeQemu();
    const device = path.join(dir, "kvm");
    fs.writeFileSync(device, "");
    const withKvm = probeQemu({ searchPath: `/nonexistent:${bin}`, kvmDevice: device, cpuinfo: cpuinfo("vmx") })!;
    expect(withKvm).toEqual({ binary: path.join(bin, "qemu-system-x86_64"), version: "QEMU emulator version 9.9.9", kvm: true });
    expect(new QemuHypervisor(withKvm, options).info()).toEqual({ kind: "qemu-kvm", version: "QEMU emulator version 9.9.9", capabilities: ["kvm"] });
    expect(probeQemu({ searchPath: bin, kvmDevice: device, cpuinfo: cpuinfo("svm") })!.kvm).toBe(true);

    const withoutDevice = probeQemu({ searchPath: bin, kvmDevice: path.join(dir, "no-such-device"), cpuinfo: cpuinfo("vmx") })!;
    expect(withoutDevice.kvm).toBe(false);
    expect(withoutDevice.kvmUnusable).toMatch(/no-such-device cannot be opened/);
    expect(new QemuHypervisor(withoutDevice, options).info().kind).toBe("qemu-tcg");
  });

  it("does not use a /dev/kvm that the CPU cannot back with hardware virtualization (a nested host's paravirtual KVM)", () => {
    const bin = fakeQemu();
    const device = path.join(dir, "kvm");
    fs.writeFileSync(device, "");
    const paravirtual = probeQemu({ searchPath: bin, kvmDevice: device, cpuinfo: cpuinfo("hypervisor lm") })!;
    expect(paravirtual.kvm).toBe(false);
    expect(paravirtual.kvmUnusable).toMatch(/no hardware virtualization/);
    expect(new QemuHypervisor(paravirtual, options).info().kind).toBe("qemu-tcg");
  });
});
