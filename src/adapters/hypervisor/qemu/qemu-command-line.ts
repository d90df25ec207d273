/**
 * The QEMU command line of a launch plan, as an argv array: every value from a user is one
 * argument of its own (or a JSON value inside one), never text for a shell. QEMU opens nothing
 * of Steward's by its path: its sockets are listening already, made by Steward, and each
 * disk's files are opened by Steward; all are handed over as file descriptors (`fd=N` for the
 * sockets, `-add-fd` for the disks, which QEMU opens as /dev/fdset/N), so that QEMU, running
 * as a user of its own, reaches only what it was given, and needs no way into Steward's folders.
 */
import type { LaunchDisk, LaunchPlan } from "../../../core/model/launch-plan";

export type Accelerator = "kvm" | "tcg";

/** The name of the guest agent's virtio-serial port, which qemu-ga looks for. */
export const GUEST_AGENT_PORT = "org.qemu.guest_agent.0";

/** What the command line is built from, besides the plan. */
export interface CommandLineInputs {
  plan: LaunchPlan;
  accelerator: Accelerator;
  /** The kernel to boot, from the host's kernel folder; undefined: boot from the first disk. */
  kernel?: { vmlinuz: string; initramfs?: string };
}

/** The listening sockets the child gets first, at descriptors 3, 4 and 5. */
export const HANDED_SOCKETS = ["qmp", "console", "agent"] as const;
export type HandedSocket = (typeof HANDED_SOCKETS)[number];

/** A file the child gets as a descriptor, after the sockets, in the order of the list. */
export interface HandedFile {
  path: string;
  readOnly: boolean;
}

/** A secret the child reads from a file of its own, handed after the disks' files. */
export interface HandedSecret {
  data: string;
}

export interface QemuCommandLine {
  args: string[];
  /** What the child's descriptors past the sockets are, in order: the disks' files, then the secrets' files. */
  files: HandedFile[];
  secrets: HandedSecret[];
}

/** The first descriptor handed to the child past stdin, stdout and stderr. */
const FIRST_HANDED_FD = 3;

/** The descriptor of a socket handed to the child. */
function socketFd(socket: HandedSocket): number {
  return FIRST_HANDED_FD + HANDED_SOCKETS.indexOf(socket);
}

/** The first descriptor past the sockets: the disks' files start there. */
const FIRST_FILE_FD = FIRST_HANDED_FD + HANDED_SOCKETS.length;

/** The kernel options Steward gives before the VM's own: its console is the serial port the Console RPC reads. */
const BASE_KERNEL_OPTIONS = "console=ttyS0";

export function qemuCommandLine(inputs: CommandLineInputs): QemuCommandLine {
  const { plan, accelerator } = inputs;
  // Booted with the balloon's ceiling, then ballooned down to `memory` (QEMU's balloon shrinks a guest, it cannot grow one past its boot size).
  const bootMib = Math.max(plan.memoryMib, plan.maxmemMib);
  const args = [
    "-name", `guest=${optionValue(plan.name)},debug-threads=on`,
    "-uuid", plan.uuid,
    "-machine", "q35",
    "-accel", accelerator,
    ...(accelerator === "kvm" ? ["-cpu", "host"] : []),
    "-m", `${bootMib}M`,
    "-smp", String(plan.vcpus),
    "-nodefaults",
    "-no-user-config",
    "-display", "none",
    // Denied to the process once it runs: obsolete system calls, raising its privileges, starting programs, and changing its scheduling.
    "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
    "-msg", "timestamp=on",
    // Launched with its CPUs stopped: the driver connects to QMP first, so no event is missed, then runs it.
    "-S",
    "-chardev", `socket,id=qmp,fd=${socketFd("qmp")},server=on,wait=off`,
    "-mon", "chardev=qmp,mode=control",
    "-chardev", `socket,id=console,fd=${socketFd("console")},server=on,wait=off`,
    "-serial", "chardev:console",
    "-device", "virtio-serial-pci,id=virtio-serial0",
    "-chardev", `socket,id=agent,fd=${socketFd("agent")},server=on,wait=off`,
    "-device", `virtserialport,bus=virtio-serial0.0,chardev=agent,name=${GUEST_AGENT_PORT}`,
    "-device", "virtio-balloon-pci,id=balloon0",
    // The guest tells its panics (GUEST_PANICKED), and QEMU then ends it: a crash, as the driver tells it.
    "-device", "pvpanic-pci",
    "-action", "panic=shutdown",
    // S3 (SuspendVm), which q35 offers only when asked.
    "-global", "ICH9-LPC.disable_s3=0",
  ];
  const descriptors = new Descriptors(plan.disks, inputs.kernel);
  args.push(...kernelArguments(inputs, descriptors));
  plan.disks.forEach((disk, index) => args.push(...diskArguments(disk, index, descriptors)));
  return { args, files: descriptors.files, secrets: descriptors.secrets };
}

/** The kernel and initramfs, handed as descriptors too; QEMU reads them through /dev/fd, which needs no way into the kernel folder. */
function kernelArguments({ plan, kernel }: CommandLineInputs, descriptors: Descriptors): string[] {
  if (!kernel) return [];
  const options = [BASE_KERNEL_OPTIONS, plan.kernelopts].filter((part) => part !== "").join(" ");
  const args = ["-kernel", `/dev/fd/${descriptors.file(kernel.vmlinuz, true)}`];
  if (kernel.initramfs) args.push("-initrd", `/dev/fd/${descriptors.file(kernel.initramfs, true)}`);
  return [...args, "-append", options];
}

/**
 * The descriptors handed to the child past its sockets: the kernel's and every disk's files
 * first, then each secret's file, so that a secret's number is known while the disks are
 * still being written.
 */
class Descriptors {
  readonly files: HandedFile[] = [];
  readonly secrets: HandedSecret[] = [];
  private readonly fileCount: number;

  constructor(disks: readonly LaunchDisk[], kernel: CommandLineInputs["kernel"]) {
    const kernelFiles = kernel ? (kernel.initramfs ? 2 : 1) : 0;
    this.fileCount = kernelFiles + disks.reduce((count, disk) => count + 1 + (disk.backing?.length ?? 0), 0);
  }

  file(path: string, readOnly: boolean): number {
    this.files.push({ path, readOnly });
    return FIRST_FILE_FD + this.files.length - 1;
  }

  secret(data: string): number {
    this.secrets.push({ data });
    return FIRST_FILE_FD + this.fileCount + this.secrets.length - 1;
  }
}

/**
 * One disk: each of its files handed over as a descriptor in a set of its own, a file node and
 * a format node for each (qcow2 images name the next one down as their backing node, so that
 * QEMU opens no backing file by the name inside the image), and a virtio-blk device whose
 * serial is the disk's name, as the guest finds it in /dev/disk/by-id. An ephemeral disk's key
 * goes in a secret, read from a pipe, so that it is never in the command line, which any user
 * of the host can read.
 */
function diskArguments(disk: LaunchDisk, index: number, descriptors: Descriptors): string[] {
  const args: string[] = [];
  const chain = disk.backing ?? [];
  // From the bottom of the chain up, so that each node names one defined before it.
  let below: string | null = null;
  for (let depth = chain.length; depth >= 0; depth--) {
    const top = depth === 0;
    const path = top ? disk.path : chain[depth - 1];
    const readOnly = top ? disk.readOnly : true;
    const fd = descriptors.file(path, readOnly);
    const set = fd;
    const fileNode = `disk${index}-file${depth}`;
    const formatNode = top ? `disk${index}` : `disk${index}-backing${depth}`;
    args.push("-add-fd", `fd=${fd},set=${set},opaque=${optionValue(`${disk.name}:${depth}`)}`);
    args.push("-blockdev", JSON.stringify({ driver: "file", filename: `/dev/fdset/${set}`, "node-name": fileNode, "read-only": readOnly, ...(readOnly ? {} : { discard: "unmap" }) }));
    const format: Record<string, unknown> = { driver: top ? disk.format : "qcow2", file: fileNode, "node-name": formatNode, "read-only": readOnly };
    if (!readOnly) format.discard = "unmap";
    if (format.driver === "qcow2" && (chain.length > 0 || !top)) format.backing = below;
    if (top && disk.key !== undefined) {
      const secret = `disk${index}-secret`;
      // The key's text is the passphrase itself, as the image was made with it (not base64 to decode).
      args.push("-object", `secret,id=${secret},file=/dev/fd/${descriptors.secret(disk.key)}`);
      if (disk.format === "qcow2") format.encrypt = { format: "luks", "key-secret": secret };
      else format["key-secret"] = secret;
    }
    args.push("-blockdev", JSON.stringify(format));
    below = formatNode;
  }
  args.push("-device", `virtio-blk-pci,drive=disk${index},id=${diskDeviceId(index)},serial=${optionValue(serialOf(disk.name))}`);
  return args;
}

/** The id of the device of the plan's disk at `index`, as QMP names it back (query-blockstats' qdev). */
export function diskDeviceId(index: number): string {
  return `virtio-disk${index}`;
}

/** virtio-blk's serial holds 20 bytes. */
function serialOf(name: string): string {
  return name.slice(0, 20);
}

/** A value inside QEMU's `key=value,…` options: a comma is written twice, so that it does not end the value. */
export function optionValue(value: string): string {
  return value.replaceAll(",", ",,");
}
