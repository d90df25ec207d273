/**
 * What a hypervisor needs to start a VM. The lifecycle fills what the VM's properties say; the
 * participants (storage, network, devices) add its disks, network interfaces and devices before
 * it starts, each in its turn.
 */
export interface LaunchPlan {
  uuid: string;
  name: string;
  qid: number;
  /** Memory the VM starts with, in MiB. */
  memoryMib: number;
  /** Memory the VM may grow to, in MiB (the balloon's ceiling); 0: it does not grow. */
  maxmemMib: number;
  vcpus: number;
  /** The kernel to boot, from the host's kernel folder; empty to boot from the root volume. */
  kernel: string;
  kernelopts: string;
  /**
   * Whether the launch waits for the guest to be up (its guest agent answers) before it
   * resolves, as StartVm's wait_for_guest asks; an abort of the launch's signal meanwhile ends
   * the VM, so that a start either gives a guest that is up or leaves nothing running.
   */
  waitForGuest?: boolean;
  /** The VM's features, which a guest may read (and the simulation takes its cues from). */
  features: Readonly<Record<string, string>>;
  /** Its disks, in the order the guest sees them. */
  disks: LaunchDisk[];
  networkInterfaces: LaunchNetworkInterface[];
  devices: LaunchDevice[];
}

export interface LaunchDisk {
  /** The volume's name in the VM: root, private, volatile, kernel, or an attached volume's. */
  name: string;
  /** The file or block device on the host, inside one of Steward's pool folders. */
  path: string;
  /** How QEMU opens it: raw, qcow2 (encrypted when `key` is set), or a LUKS image. */
  format: "raw" | "qcow2" | "luks";
  readOnly: boolean;
  /**
   * The images under a qcow2 disk's, nearest first, each a qcow2 image the one above names as
   * its backing file (read-only): the hypervisor opens the whole chain from the plan, never by
   * the names inside the images. Absent for a disk that has none.
   */
  backing?: readonly string[];
  /**
   * The passphrase of an ephemeral volume's LUKS encryption (32 random bytes as base64 text, a
   * QEMU secret's data): made for this start, kept nowhere but in the plan (never stored, never
   * logged), so that the volume's bytes are unreadable once the VM is gone.
   */
  key?: string;
}

export interface LaunchNetworkInterface {
  mac: string;
  /** The guest's addresses; empty when it has none of that family. */
  ip: string;
  ip6: string;
  /** The host side: the tap device the interface is plugged into. */
  hostInterface: string;
}

export interface LaunchDevice {
  /** The device class, as Qubes names them: block, usb, pci… */
  kind: string;
  /** The device's id on the host (a PCI address, a block device name…). */
  id: string;
  options: Readonly<Record<string, string>>;
}
