import { qemuCommandLine } from "../../../../../src/adapters/hypervisor/qemu/qemu-command-line";
import type { LaunchPlan } from "../../../../../src/core/model/launch-plan";

function plan(overrides: Partial<LaunchPlan> = {}): LaunchPlan {
  return {
    uuid: "6f1c2b4e-8d1a-4c39-9a53-2f4f0b7f1e10",
    name: "work",
    qid: 3,
    memoryMib: 400,
    maxmemMib: 0,
    vcpus: 2,
    kernel: "",
    kernelopts: "",
    features: {},
    disks: [],
    networkInterfaces: [],
    devices: [],
    ...overrides,
  };
}

/** The value after each `flag` in the command line. */
function valuesOf(args: string[], flag: string): string[] {
  return args.flatMap((arg, at) => (arg === flag ? [args[at + 1]] : []));
}

function blockdevs(args: string[]): Record<string, unknown>[] {
  return valuesOf(args, "-blockdev").map((json) => JSON.parse(json) as Record<string, unknown>);
}

describe("the QEMU command line of a launch plan", () => {
  it("names the VM and its uuid, sizes it, and gives QEMU no display, no defaults and a sandbox that denies privileges and spawning", () => {
    const { args } = qemuCommandLine({ plan: plan(), accelerator: "kvm" });
    expect(valuesOf(args, "-name")).toEqual(["guest=work,debug-threads=on"]);
    expect(valuesOf(args, "-uuid")).toEqual(["6f1c2b4e-8d1a-4c39-9a53-2f4f0b7f1e10"]);
    expect(valuesOf(args, "-m")).toEqual(["400M"]);
    expect(valuesOf(args, "-smp")).toEqual(["2"]);
    expect(valuesOf(args, "-accel")).toEqual(["kvm"]);
    expect(valuesOf(args, "-cpu")).toEqual(["host"]);
    expect(valuesOf(args, "-display")).toEqual(["none"]);
    expect(args).toEqual(expect.arrayContaining(["-nodefaults", "-no-user-config", "-S"]));
    expect(valuesOf(args, "-sandbox")).toEqual(["on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"]);
  });

  it("under TCG, asks for no host CPU model", () => {
    const { args } = qemuCommandLine({ plan: plan(), accelerator: "tcg" });
    expect(valuesOf(args, "-accel")).toEqual(["tcg"]);
    expect(valuesOf(args, "-cpu")).toEqual([]);
  });

  it("boots with maxmem, the balloon's ceiling, when it is above memory", () => {
    expect(valuesOf(qemuCommandLine({ plan: plan({ memoryMib: 400, maxmemMib: 4000 }), accelerator: "tcg" }).args, "-m")).toEqual(["4000M"]);
  });

  it("takes its QMP, console and agent sockets as descriptors 3, 4 and 5, listening already, and names no path of Steward's", () => {
    const { args } = qemuCommandLine({ plan: plan(), accelerator: "tcg" });
    expect(valuesOf(args, "-chardev")).toEqual([
      "socket,id=qmp,fd=3,server=on,wait=off",
      "socket,id=console,fd=4,server=on,wait=off",
      "socket,id=agent,fd=5,server=on,wait=off",
    ]);
    expect(valuesOf(args, "-mon")).toEqual(["chardev=qmp,mode=control"]);
    expect(valuesOf(args, "-serial")).toEqual(["chardev:console"]);
    expect(valuesOf(args, "-device")).toContain("virtserialport,bus=virtio-serial0.0,chardev=agent,name=org.qemu.guest_agent.0");
    expect(args.filter((arg) => arg.includes("/var/") || arg.includes("/tmp/") || arg.includes("-pidfile"))).toEqual([]);
  });

  it("keeps a user's text in arguments of its own: kernel options whole, a comma in a name doubled so that it ends no option", () => {
    const kernelopts = "quiet root=/dev/vda; rm -rf / $(reboot) `x`";
    const { args, files } = qemuCommandLine({
      plan: plan({ name: "a,b=c", kernel: "6.1", kernelopts }),
      accelerator: "tcg",
      kernel: { vmlinuz: "/data/kernels/6.1/vmlinuz", initramfs: "/data/kernels/6.1/initramfs" },
    });
    expect(valuesOf(args, "-name")).toEqual(["guest=a,,b=c,debug-threads=on"]);
    expect(valuesOf(args, "-append")).toEqual([`console=ttyS0 ${kernelopts}`]);
    // The kernel's files are handed over too, past the sockets.
    expect(valuesOf(args, "-kernel")).toEqual(["/dev/fd/6"]);
    expect(valuesOf(args, "-initrd")).toEqual(["/dev/fd/7"]);
    expect(files).toEqual([
      { path: "/data/kernels/6.1/vmlinuz", readOnly: true },
      { path: "/data/kernels/6.1/initramfs", readOnly: true },
    ]);
  });

  it("boots nothing of a kernel when the plan has none (the firmware boots the first disk)", () => {
    const { args } = qemuCommandLine({ plan: plan({ kernelopts: "ignored" }), accelerator: "tcg" });
    expect(valuesOf(args, "-kernel")).toEqual([]);
    expect(valuesOf(args, "-append")).toEqual([]);
  });

  it("hands each disk's file over in its own fd set, in the plan's order, with its format and read-only flag, as virtio-blk devices named by serial", () => {
    const { args, files } = qemuCommandLine({
      plan: plan({
        disks: [
          { name: "root", path: "/pools/p/root.img", format: "raw", readOnly: true },
          { name: "private", path: "/pools/p/private.img", format: "raw", readOnly: false },
        ],
      }),
      accelerator: "tcg",
    });
    expect(files).toEqual([
      { path: "/pools/p/root.img", readOnly: true },
      { path: "/pools/p/private.img", readOnly: false },
    ]);
    expect(valuesOf(args, "-add-fd")).toEqual(["fd=6,set=6,opaque=root:0", "fd=7,set=7,opaque=private:0"]);
    expect(blockdevs(args)).toEqual([
      { driver: "file", filename: "/dev/fdset/6", "node-name": "disk0-file0", "read-only": true },
      { driver: "raw", file: "disk0-file0", "node-name": "disk0", "read-only": true },
      { driver: "file", filename: "/dev/fdset/7", "node-name": "disk1-file0", "read-only": false, discard: "unmap" },
      { driver: "raw", file: "disk1-file0", "node-name": "disk1", "read-only": false, discard: "unmap" },
    ]);
    expect(valuesOf(args, "-device").filter((device) => device.startsWith("virtio-blk-pci"))).toEqual([
      "virtio-blk-pci,drive=disk0,id=virtio-disk0,serial=root",
      "virtio-blk-pci,drive=disk1,id=virtio-disk1,serial=private",
    ]);
    expect(args.join(" ")).not.toContain("/pools/");
  });

  it("opens a qcow2 disk's backing chain from the plan, bottom first, each image naming the one below as its backing node", () => {
    const { args, files } = qemuCommandLine({
      plan: plan({ disks: [{ name: "root", path: "/p/root.qcow2", format: "qcow2", readOnly: false, backing: ["/p/root.qcow2.2~", "/p/base.qcow2"] }] }),
      accelerator: "tcg",
    });
    expect(files).toEqual([
      { path: "/p/base.qcow2", readOnly: true },
      { path: "/p/root.qcow2.2~", readOnly: true },
      { path: "/p/root.qcow2", readOnly: false },
    ]);
    const formats = blockdevs(args).filter((node) => node.driver === "qcow2");
    expect(formats).toEqual([
      { driver: "qcow2", file: "disk0-file2", "node-name": "disk0-backing2", "read-only": true, backing: null },
      { driver: "qcow2", file: "disk0-file1", "node-name": "disk0-backing1", "read-only": true, backing: "disk0-backing2" },
      { driver: "qcow2", file: "disk0-file0", "node-name": "disk0", "read-only": false, discard: "unmap", backing: "disk0-backing1" },
    ]);
  });

  it("leaves a qcow2 disk without a chain to its own header (an image with no backing file)", () => {
    const { args } = qemuCommandLine({ plan: plan({ disks: [{ name: "private", path: "/p/private.qcow2", format: "qcow2", readOnly: false }] }), accelerator: "tcg" });
    expect(blockdevs(args)[1]).not.toHaveProperty("backing");
  });

  it("gives an ephemeral disk's key as a secret read from a file descriptor past the disks' files, never in the command line", () => {
    const key = "c2VjcmV0LWtleS1vZi10aGUtcnVu";
    const { args, files, secrets } = qemuCommandLine({
      plan: plan({
        disks: [
          { name: "volatile", path: "/p/volatile.luks", format: "luks", readOnly: false, key },
          { name: "private", path: "/p/private.img", format: "raw", readOnly: false },
        ],
      }),
      accelerator: "tcg",
    });
    expect(args.join(" ")).not.toContain(key);
    expect(files).toHaveLength(2);
    expect(secrets).toEqual([{ data: key }]);
    // Descriptors 6 and 7 are the two disks' files; the secret's file comes after them.
    expect(valuesOf(args, "-object")).toEqual(["secret,id=disk0-secret,file=/dev/fd/8"]);
    expect(blockdevs(args)[1]).toMatchObject({ driver: "luks", "key-secret": "disk0-secret" });
  });
});
