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

  it("finds nothing when QEMU is not on the PATH", () => {
    expect(probeQemu(dir, "/dev/null")).toBeUndefined();
  });

  it("reads the version, and tells KVM from TCG by whether the device opens", () => {
    const bin = fakeQemu();
    const device = path.join(dir, "kvm");
    fs.writeFileSync(device, "");
    const withKvm = probeQemu(`/nonexistent:${bin}`, device)!;
    expect(withKvm).toEqual({ binary: path.join(bin, "qemu-system-x86_64"), version: "QEMU emulator version 9.9.9", kvm: true });
    expect(new QemuHypervisor(withKvm).info()).toEqual({ kind: "qemu-kvm", version: "QEMU emulator version 9.9.9", capabilities: ["kvm"] });

    const withoutKvm = probeQemu(bin, path.join(dir, "no-such-device"))!;
    expect(withoutKvm.kvm).toBe(false);
    expect(new QemuHypervisor(withoutKvm).info().kind).toBe("qemu-tcg");
  });
});
