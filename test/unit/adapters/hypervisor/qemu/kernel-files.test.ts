import * as fs from "node:fs";
import * as path from "node:path";
import { randomUUID } from "node:crypto";
import { QemuHypervisor, readableBy } from "../../../../../src/adapters/hypervisor/qemu/qemu-hypervisor";
import type { LaunchPlan } from "../../../../../src/core/model/launch-plan";
import { makeTempDir, removeDir } from "../../../../fixtures/temp-dir";

const qemu = { uid: 64055, gid: 993, name: "steward-qemu" };

describe("a kernel folder's files, as QEMU's user may read them", () => {
  it("reads the owner's, the primary group's or everyone's read bit, whichever applies to the user", () => {
    expect(readableBy({ mode: 0o100644, uid: 0, gid: 0 }, qemu)).toBe(true);
    expect(readableBy({ mode: 0o100600, uid: 0, gid: 0 }, qemu)).toBe(false);
    expect(readableBy({ mode: 0o100640, uid: 0, gid: qemu.gid }, qemu)).toBe(true);
    expect(readableBy({ mode: 0o100600, uid: qemu.uid, gid: 0 }, qemu)).toBe(true);
    // Its owner's bits alone count for the owner, as the kernel checks them.
    expect(readableBy({ mode: 0o100044, uid: qemu.uid, gid: 0 }, qemu)).toBe(false);
  });

  describe("a start whose kernel QEMU's user may not read", () => {
    let dir: string;
    beforeEach(() => (dir = makeTempDir()));
    afterEach(() => removeDir(dir));

    it("is refused before anything runs: FAILED_PRECONDITION (KERNEL_UNREADABLE), naming the file and what to do", async () => {
      const kernel = path.join(dir, "kernels", "6.1");
      fs.mkdirSync(kernel, { recursive: true });
      fs.writeFileSync(path.join(kernel, "vmlinuz"), "not really a kernel");
      fs.chmodSync(path.join(kernel, "vmlinuz"), 0o600);
      // "nobody" is in every /etc/passwd, and owns no file of this test's.
      const driver = new QemuHypervisor({ binary: "/nonexistent/qemu", version: "", kvm: false }, { runDir: path.join(dir, "qemu"), kernelsDir: path.join(dir, "kernels"), user: "nobody" });
      const plan: LaunchPlan = { uuid: randomUUID(), name: "work", qid: 2, memoryMib: 128, maxmemMib: 0, vcpus: 1, kernel: "6.1", kernelopts: "", features: {}, disks: [], networkInterfaces: [], devices: [] };
      const refused = driver.launch(plan, new AbortController().signal);
      await expect(refused).rejects.toMatchObject({ kind: "failed-precondition", reason: "KERNEL_UNREADABLE", metadata: { vm: "work", kernel: "6.1", file: "vmlinuz" } });
      await expect(refused).rejects.toThrow(/vmlinuz of its kernel 6\.1 \(mode 0600\) is not readable by nobody.*0644/);
      expect(fs.existsSync(path.join(dir, "qemu"))).toBe(false);
    });
  });
});
