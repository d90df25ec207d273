/**
 * Where a running VM's QEMU keeps its sockets and pidfile: a folder per VM, by uuid, under the
 * driver's run folder (`<data-dir>/qemu`). The folder outlives Steward, as the QEMU does; the
 * next Steward finds the VMs to adopt by these folders, as libvirtd does by its status files.
 */
import * as path from "node:path";

/** A unix socket's path must fit in sockaddr_un's 108 bytes, its ending NUL included. */
export const MAX_SOCKET_PATH = 107;

export interface QemuRunFiles {
  dir: string;
  qmpSocket: string;
  consoleSocket: string;
  agentSocket: string;
  pidfile: string;
  /** What Steward knows of the launch that QEMU does not keep: the VM's name, its start time and its disks' names. */
  launchRecord: string;
  /** QEMU's own output (its errors at start, above all). */
  log: string;
}

export function runFilesOf(runDir: string, uuid: string): QemuRunFiles {
  const dir = path.join(runDir, uuid);
  return {
    dir,
    qmpSocket: path.join(dir, "qmp.sock"),
    consoleSocket: path.join(dir, "console.sock"),
    agentSocket: path.join(dir, "agent.sock"),
    pidfile: path.join(dir, "qemu.pid"),
    launchRecord: path.join(dir, "launch.json"),
    log: path.join(dir, "qemu.log"),
  };
}

/** The longest socket path of a VM's folder, to refuse a run folder too deep for sockets before anything starts. */
export function longestSocketPath(files: QemuRunFiles): string {
  return [files.qmpSocket, files.consoleSocket, files.agentSocket].reduce((a, b) => (Buffer.byteLength(b) > Buffer.byteLength(a) ? b : a));
}

/** What the launch record holds. */
export interface LaunchRecord {
  uuid: string;
  name: string;
  startedAt: string;
  pid: number;
  /** The plan's disks' names, in its order (the stats name each device's I/O by them). */
  disks: string[];
}
