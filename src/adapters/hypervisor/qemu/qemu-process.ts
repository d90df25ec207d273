/**
 * Starting a VM's QEMU process, and telling later whether a pid is still that VM's QEMU. The
 * process is started detached (a session of its own), so that it outlives Steward; as the
 * unprivileged user the driver is given; with its sockets, listening already, and the disks'
 * files handed over as descriptors, so that it needs no way into Steward's folders.
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as net from "node:net";
import * as path from "node:path";
import { startAborted } from "../../../ports/hypervisor-errors";
import { HANDED_SOCKETS, type HandedSocket, type QemuCommandLine } from "./qemu-command-line";
import { QmpClient } from "./qmp/qmp-client";
import type { QemuRunFiles } from "./qemu-run-files";

/** Who QEMU runs as; undefined where Steward is not root and QEMU runs as Steward's own user. */
export interface QemuUser {
  name: string;
  uid: number;
  gid: number;
}

/** How often a start looks for QEMU's QMP socket. */
const QMP_POLL_MS = 5;
/** How long QEMU may take to open its QMP socket (TCG on a loaded host included). */
const QMP_APPEAR_TIMEOUT_MS = 30_000;
/** How long a start whose QMP connection failed waits to learn whether QEMU exited. */
const EXIT_GRACE_MS = 500;
/** How much of QEMU's output an error at start quotes. */
const LOG_TAIL_BYTES = 2000;

/** QEMU ended before its QMP socket answered: what it printed says why. */
export class QemuExitedAtStartError extends Error {
  constructor(
    readonly output: string,
    readonly exit: string,
  ) {
    super(`QEMU exited at start (${exit})${output ? `: ${output}` : ""}`);
  }
}

/** The program could not be run at all (not installed, not executable). */
export class QemuNotRunnableError extends Error {}

export interface StartedQemu {
  child: ChildProcess;
  pid: number;
  qmp: QmpClient;
  /** When the process was started. */
  startedAt: Date;
}

/**
 * Starts QEMU with `commandLine` and connects to its QMP socket; its CPUs are still stopped
 * (-S). When anything fails, or `signal` aborts, what was started is ended and the VM's folder
 * is left for the caller to remove.
 */
export async function startQemu(
  binary: string,
  commandLine: QemuCommandLine,
  files: QemuRunFiles,
  user: QemuUser | undefined,
  vm: string,
  signal: AbortSignal,
): Promise<StartedQemu> {
  await prepareFolder(files);
  const sockets = await listenAll(files);
  let child: ChildProcess;
  const startedAt = new Date();
  try {
    const descriptors = await openHanded(commandLine, files, user);
    try {
      child = spawn(binary, commandLine.args, {
        detached: true,
        // A folder QEMU's user may be in: QEMU opens nothing by a relative path.
        cwd: "/",
        stdio: ["ignore", descriptors.log, descriptors.log, ...HANDED_SOCKETS.map((socket) => descriptorOf(sockets[socket])), ...descriptors.handed],
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C.UTF-8" },
        ...(user ? { uid: user.uid, gid: user.gid } : {}),
      });
    } finally {
      for (const fd of [descriptors.log, ...descriptors.handed]) fs.closeSync(fd);
    }
  } finally {
    // QEMU has its own copies of the listening sockets; Steward's are closed (which leaves the socket files).
    await closeAll(sockets);
  }
  // QEMU runs on its own; Steward's event loop does not wait for it.
  child.unref();
  try {
    const pid = await spawned(child, binary);
    await fsp.writeFile(files.pidfile, `${pid}\n`);
    const qmp = await connectWhenReady(child, files, vm, signal);
    // The keys were read when QEMU set up its objects, before its monitor answered.
    await removeSecrets(files);
    return { child, pid, qmp, startedAt };
  } catch (error) {
    endChild(child);
    await removeSecrets(files);
    throw error;
  }
}

/** The VM's folder, fresh: what an earlier run of the same VM left is gone. Steward's alone: QEMU gets what it needs of it as descriptors. */
async function prepareFolder(files: QemuRunFiles): Promise<void> {
  await fsp.rm(files.dir, { recursive: true, force: true });
  await fsp.mkdir(files.dir, { recursive: true, mode: 0o700 });
}

type Listening = Record<HandedSocket, net.Server>;

/** QEMU's unix sockets, bound and listening, for QEMU to accept on: QMP, the serial console, the guest agent's channel. */
async function listenAll(files: QemuRunFiles): Promise<Listening> {
  const paths: Record<HandedSocket, string> = { qmp: files.qmpSocket, console: files.consoleSocket, agent: files.agentSocket };
  const servers: Partial<Listening> = {};
  try {
    for (const socket of HANDED_SOCKETS) servers[socket] = await listen(paths[socket]);
    return servers as Listening;
  } catch (error) {
    await closeAll(servers);
    throw error;
  }
}

/**
 * A socket listening at `socketPath`. It is bound at a name of its own first and linked to
 * its real one, since closing a server removes the name it was bound to: Steward's server is
 * closed once QEMU has its copy, and the real name stays, for clients (Steward) to connect to.
 */
async function listen(socketPath: string): Promise<net.Server> {
  const bound = `${socketPath}.bound`;
  const server = await new Promise<net.Server>((resolve, reject) => {
    // Steward never takes a connection on these: QEMU does, on its copy.
    const made = net.createServer({ pauseOnConnect: true }, (connection) => connection.destroy());
    made.once("error", reject);
    made.listen({ path: bound, backlog: 8 }, () => resolve(made));
  });
  await fsp.link(bound, socketPath);
  return server;
}

/**
 * The descriptor of a listening server, to hand to the child: Node gives no public way to it
 * (its handle's fd, which libuv keeps), and none to make a listening socket from a descriptor.
 */
function descriptorOf(server: net.Server): number {
  const fd = (server as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== "number" || fd < 0) throw new Error("the listening socket has no descriptor to hand to QEMU");
  return fd;
}

async function closeAll(servers: Partial<Listening>): Promise<void> {
  await Promise.all(Object.values(servers).map((server) => new Promise((resolve) => server.close(resolve))));
}

interface OpenDescriptors {
  log: number;
  handed: number[];
}

/** The log, the disks' files and the secrets' files, opened by Steward for the child. */
async function openHanded(commandLine: QemuCommandLine, files: QemuRunFiles, user: QemuUser | undefined): Promise<OpenDescriptors> {
  const opened: number[] = [];
  try {
    const log = fs.openSync(files.log, "a", 0o600);
    opened.push(log);
    for (const file of commandLine.files) opened.push(fs.openSync(file.path, file.readOnly ? fs.constants.O_RDONLY : fs.constants.O_RDWR));
    for (const [index, secret] of commandLine.secrets.entries()) {
      const secretFile = secretPath(files, index);
      fs.writeFileSync(secretFile, secret.data, { mode: 0o400 });
      if (user) fs.chownSync(secretFile, user.uid, user.gid);
      opened.push(fs.openSync(secretFile, fs.constants.O_RDONLY));
    }
    return { log, handed: opened.slice(1) };
  } catch (error) {
    for (const fd of opened) fs.closeSync(fd);
    throw error;
  }
}

function secretPath(files: QemuRunFiles, index: number): string {
  return path.join(files.dir, `secret${index}`);
}

async function removeSecrets(files: QemuRunFiles): Promise<void> {
  const names = await fsp.readdir(files.dir).catch(() => [] as string[]);
  await Promise.all(names.filter((name) => /^secret\d+$/.test(name)).map((name) => fsp.rm(path.join(files.dir, name), { force: true })));
}

/** The child's pid once it runs; QemuNotRunnableError when the program could not be run. */
function spawned(child: ChildProcess, binary: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const failed = (error: Error): void => reject(new QemuNotRunnableError(`${binary} could not be run: ${error.message}`));
    if (child.pid !== undefined) {
      child.once("error", () => undefined);
      resolve(child.pid);
      return;
    }
    child.once("error", failed);
    child.once("spawn", () => resolve(child.pid!));
  });
}

/** Connects to QMP as soon as QEMU listens, unless it exits first, the start is aborted, or it takes too long. */
async function connectWhenReady(child: ChildProcess, files: QemuRunFiles, vm: string, signal: AbortSignal): Promise<QmpClient> {
  const exited = new Promise<string>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(exitOf(child.exitCode, child.signalCode));
    child.once("exit", (code, exitSignal) => resolve(exitOf(code, exitSignal)));
  });
  let exit: string | undefined;
  void exited.then((how) => (exit = how));
  const deadline = Date.now() + QMP_APPEAR_TIMEOUT_MS;
  for (;;) {
    if (signal.aborted) throw startAborted(vm);
    if (exit !== undefined) throw new QemuExitedAtStartError(await logTail(files.log), exit);
    if (Date.now() > deadline) throw new Error(`QEMU did not open its QMP socket within ${QMP_APPEAR_TIMEOUT_MS / 1000} s`);
    const connecting = QmpClient.connect(files.qmpSocket, { timeoutMs: QMP_APPEAR_TIMEOUT_MS });
    const outcome = await Promise.race([
      connecting.then((qmp) => ({ qmp }), (error: unknown) => ({ error })),
      exited.then(() => ({ ended: true })),
      aborted(signal).then(() => ({ ended: true })),
    ]);
    if ("qmp" in outcome) return outcome.qmp;
    if ("error" in outcome && !isNotListening(outcome.error)) {
      // A connection QEMU dropped as it exited: its output says why, once its exit is known.
      await Promise.race([exited, sleep(EXIT_GRACE_MS)]);
      if (exit === undefined) throw outcome.error;
      continue;
    }
    // Ended or aborted while connecting: the connection, if it comes, is not wanted.
    void connecting.then((qmp) => qmp.close(), () => undefined);
    await Promise.race([sleep(QMP_POLL_MS), exited]);
  }
}

/** Resolves when `signal` aborts (never, when it does not). */
function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

function isNotListening(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === "ECONNREFUSED" || code === "ENOENT";
}

function exitOf(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `killed by ${signal}` : `exit code ${code ?? "unknown"}`;
}

/** The end of QEMU's output, where its error at start is. */
async function logTail(log: string): Promise<string> {
  try {
    const text = await fsp.readFile(log, "utf8");
    return text.slice(-LOG_TAIL_BYTES).trim();
  } catch {
    return "";
  }
}

function endChild(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
    try {
      process.kill(child.pid, "SIGKILL");
    } catch {
      // Gone already.
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Whether `pid` is a live QEMU of the VM `uuid`: a pidfile may outlive its process, and the
 * pid be reused by another, so the process's own command line must say `-uuid <uuid>`.
 */
export async function isQemuOf(pid: number, uuid: string): Promise<boolean> {
  try {
    const [cmdline, stat] = await Promise.all([fsp.readFile(`/proc/${pid}/cmdline`), fsp.readFile(`/proc/${pid}/stat`, "utf8")]);
    if (processState(stat) === "Z") return false;
    const args = cmdline.toString("utf8").split("\0");
    const uuidAt = args.indexOf("-uuid");
    return path.basename(args[0]).startsWith("qemu-system") && uuidAt > 0 && args[uuidAt + 1] === uuid;
  } catch {
    return false;
  }
}

/** Whether a process of that pid still exists (a zombie counts as gone). */
export async function processAlive(pid: number): Promise<boolean> {
  try {
    return processState(await fsp.readFile(`/proc/${pid}/stat`, "utf8")) !== "Z";
  } catch {
    return false;
  }
}

/** The state letter of /proc/PID/stat, which follows the command's name in parentheses (which may hold spaces or parentheses). */
function processState(stat: string): string {
  return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
}
