import * as fs from "node:fs";
import type { QemuUser } from "./qemu-process";

/**
 * The user of that name in the host's /etc/passwd, with its primary group (QEMU is started
 * with that group alone: give the user the kvm group as its primary one, as Debian does for
 * libvirt-qemu, so that it can open /dev/kvm); undefined when there is none.
 */
export function lookUpUser(name: string, passwd = "/etc/passwd"): QemuUser | undefined {
  let text: string;
  try {
    text = fs.readFileSync(passwd, "utf8");
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    const [user, , uid, gid] = line.split(":");
    if (user === name && /^\d+$/.test(uid ?? "") && /^\d+$/.test(gid ?? "")) return { name, uid: Number(uid), gid: Number(gid) };
  }
  return undefined;
}
