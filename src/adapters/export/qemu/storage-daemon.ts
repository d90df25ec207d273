/**
 * Steward's qemu-storage-daemon: started detached (a session of its own), so that it and its
 * exports outlive Steward; found again by its pidfile and QMP socket, as the VMs' QEMUs are.
 *
 * It runs as Steward's own user, not as the VMs' unprivileged one: the VMs' QEMUs get their
 * disks as descriptors that Steward opened, but this QEMU's qemu-storage-daemon has no fd sets
 * (add-fd), so it opens each volume by its path, which only Steward's user may.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { exporterUnavailable } from "../../../ports/block-exporter-errors";
import { QmpClient } from "../../hypervisor/qemu/qmp/qmp-client";

/** A unix socket's path must fit in sockaddr_un's 108 bytes, its ending NUL included. */
export const MAX_SOCKET_PATH = 107;

const QMP_POLL_MS = 5;
const QMP_APPEAR_TIMEOUT_MS = 15_000;
const LOG_TAIL_BYTES = 2000;

export interface DaemonFiles {
  dir: string;
  qmpSocket: string;
  pidfile: string;
  log: string;
}

export function daemonFilesIn(dir: string): DaemonFiles {
  return { dir, qmpSocket: path.join(dir, "qmp.sock"), pidfile: path.join(dir, "daemon.pid"), log: path.join(dir, "daemon.log") };
}

export interface RunningDaemon {
  pid: number;
  qmp: QmpClient;
}

/**
 * The daemon an earlier Steward left, when its pid is still this folder's qemu-storage-daemon
 * and it answers on its QMP socket (one client at a time: never while this Steward holds it).
 */
export async function findDaemon(files: DaemonFiles): Promise<RunningDaemon | undefined> {
  const pid = Number((await fsp.readFile(files.pidfile, "utf8").catch(() => "")).trim());
  if (!Number.isInteger(pid) || pid <= 0 || !(await isDaemonOf(pid, files))) return undefined;
  try {
    return { pid, qmp: await QmpClient.connect(files.qmpSocket, { timeoutMs: 5000 }) };
  } catch {
    // A daemon of this folder that does not answer cannot be driven: it is ended, so that the
    // new one started in its place is the only one holding the volumes.
    kill(pid);
    return undefined;
  }
}

/** Starts a new daemon, with nothing in it but its QMP monitor; what an earlier one left in its folder is gone. */
export async function startDaemon(binary: string, files: DaemonFiles): Promise<RunningDaemon> {
  if (Buffer.byteLength(files.qmpSocket) > MAX_SOCKET_PATH) throw exporterUnavailable(`the data folder is too deep for a unix socket: ${files.qmpSocket}`);
  await fsp.rm(files.dir, { recursive: true, force: true });
  await fsp.mkdir(files.dir, { recursive: true, mode: 0o700 });
  const log = fs.openSync(files.log, "a", 0o600);
  const args = ["--chardev", `socket,id=qmp,path=${files.qmpSocket},server=on,wait=off`, "--monitor", "chardev=qmp", "--pidfile", files.pidfile];
  let child: ReturnType<typeof spawn>;
  try {
    child = spawn(binary, args, { detached: true, cwd: "/", stdio: ["ignore", log, log], env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C.UTF-8" } });
  } finally {
    fs.closeSync(log);
  }
  child.unref();
  let exit: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once("error", (error) => {
      exit = error.message;
      resolve();
    });
    child.once("exit", (code, signal) => {
      exit = signal ? `killed by ${signal}` : `exit code ${code ?? "unknown"}`;
      resolve();
    });
  });
  const deadline = Date.now() + QMP_APPEAR_TIMEOUT_MS;
  for (;;) {
    if (exit !== undefined) throw exporterUnavailable(`${binary} ended at start (${exit})${await logTail(files.log)}`);
    if (Date.now() > deadline) {
      kill(child.pid);
      throw exporterUnavailable(`${binary} did not open its QMP socket within ${QMP_APPEAR_TIMEOUT_MS / 1000} s`);
    }
    try {
      const qmp = await QmpClient.connect(files.qmpSocket, { timeoutMs: QMP_APPEAR_TIMEOUT_MS });
      return { pid: child.pid!, qmp };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "ECONNREFUSED") {
        kill(child.pid);
        throw exporterUnavailable(`${binary}'s QMP socket did not answer: ${(error as Error).message}`);
      }
    }
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, QMP_POLL_MS))]);
  }
}

/** Whether `pid` is a live qemu-storage-daemon of this folder: a pidfile may outlive its process, and the pid be reused. */
async function isDaemonOf(pid: number, files: DaemonFiles): Promise<boolean> {
  try {
    const [cmdline, stat] = await Promise.all([fsp.readFile(`/proc/${pid}/cmdline`), fsp.readFile(`/proc/${pid}/stat`, "utf8")]);
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    const args = cmdline.toString("utf8").split("\0");
    return state !== "Z" && path.basename(args[0]) === "qemu-storage-daemon" && args.some((arg) => arg.includes(`path=${files.qmpSocket},`));
  } catch {
    return false;
  }
}

function kill(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // Gone already.
  }
}

async function logTail(log: string): Promise<string> {
  const text = (await fsp.readFile(log, "utf8").catch(() => "")).slice(-LOG_TAIL_BYTES).trim();
  return text ? `: ${text}` : "";
}
