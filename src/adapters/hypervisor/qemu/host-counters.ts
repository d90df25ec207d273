/**
 * What the host's kernel counts of a VM's QEMU: the CPU time of its vCPU threads and the
 * resident memory of the process (/proc), and the traffic of its network interfaces' host
 * sides (/sys/class/net), as libvirt reads them for virDomainGetInfo and domifstat.
 */
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import type { InterfaceIoStats } from "../../../ports/hypervisor";

/** The kernel's clock ticks per second, in which /proc's stat counts CPU time (USER_HZ: 100 on Linux). */
const USER_HZ = 100;

/**
 * The CPU time a thread of `pid` has run, in nanoseconds: schedstat's first field, exact to the
 * nanosecond, or stat's user and system ticks where the kernel keeps no schedstat.
 */
export async function threadCpuNs(pid: number, tid: number): Promise<number> {
  const task = `/proc/${pid}/task/${tid}`;
  try {
    const schedstat = await fsp.readFile(`${task}/schedstat`, "utf8");
    const ran = Number(schedstat.split(" ")[0]);
    if (Number.isFinite(ran)) return ran;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  return ticksOfStat(await fsp.readFile(`${task}/stat`, "utf8")) * (1e9 / USER_HZ);
}

/** utime plus stime from a /proc stat line; the fields are counted after the command's closing parenthesis, as the command may hold spaces. */
export function ticksOfStat(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of proc(5), of which this list starts at field 3.
  return Number(fields[11]) + Number(fields[12]);
}

/** The resident memory of process `pid`, in bytes (VmRSS of its status). */
export async function residentBytes(pid: number): Promise<number> {
  return residentBytesOfStatus(await fsp.readFile(`/proc/${pid}/status`, "utf8"));
}

export function residentBytesOfStatus(status: string): number {
  const line = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  return line ? Number(line[1]) * 1024 : 0;
}

/**
 * The traffic of a network interface as the guest behind it sees it: a tap's host side sends
 * what the guest receives (libvirt turns them round the same way). Undefined when the device
 * is gone.
 */
export async function interfaceCounters(name: string, sysClassNet = "/sys/class/net"): Promise<InterfaceIoStats | undefined> {
  const folder = path.join(sysClassNet, path.basename(name), "statistics");
  const read = async (counter: string): Promise<number> => Number((await fsp.readFile(path.join(folder, counter), "utf8")).trim());
  try {
    const [hostRxBytes, hostTxBytes, hostRxPackets, hostTxPackets] = await Promise.all(["rx_bytes", "tx_bytes", "rx_packets", "tx_packets"].map(read));
    return { name, rxBytes: hostTxBytes, txBytes: hostRxBytes, rxPackets: hostTxPackets, txPackets: hostRxPackets };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}
