import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import type { LaunchPlan } from "../../../core/model/launch-plan";
import type { Hypervisor, HypervisorInfo, RunningVm } from "../../../ports/hypervisor";
import {
  acceleratorUnusable,
  guestAgentAbsent,
  hypervisorUnavailable,
  hypervisorUserMissing,
  kernelMissing,
  kernelUnreadable,
  runFolderTooDeep,
  startAborted,
} from "../../../ports/hypervisor-errors";
import { type Accelerator, qemuCommandLine, type CommandLineInputs } from "./qemu-command-line";
import { guestStatusOf, QemuGuest } from "./qemu-guest";
import type { QemuInstallation } from "./qemu-probe";
import { isQemuOf, QemuExitedAtStartError, QemuNotRunnableError, type QemuUser, startQemu } from "./qemu-process";
import { type LaunchRecord, longestSocketPath, MAX_SOCKET_PATH, type QemuRunFiles, runFilesOf } from "./qemu-run-files";
import { lookUpUser } from "./qemu-user";
import { MonitorTimeoutError } from "./qmp/monitor-connection";
import { QmpClient } from "./qmp/qmp-client";

/** The longest a launch that waits for the guest waits for its agent, whatever the call's deadline. */
const GUEST_UP_TIMEOUT_MS = 5 * 60_000;

export interface QemuHypervisorOptions {
  /** Where the VMs' folders (sockets, pidfiles) go: `<data-dir>/qemu`. */
  runDir: string;
  /** The host's kernel folder, where a VM's kernel property names a folder with vmlinuz and initramfs. */
  kernelsDir: string;
  /**
   * The name of the user QEMU runs as, looked up at each launch, so that a user made after
   * Steward started is found; undefined: Steward's own user (where Steward is not root).
   */
  user: string | undefined;
}

/**
 * QEMU: one process per VM, KVM when /dev/kvm can run guests, else TCG software emulation. The
 * processes outlive Steward; the next Steward adopts them by their folders in the run folder.
 */
export class QemuHypervisor implements Hypervisor {
  /** The guests this driver follows, and those being launched, by uuid. */
  private readonly guests = new Map<string, QemuGuest>();
  private readonly launching = new Set<string>();
  /** The removal of the folder of a VM that ended, which a new launch of it waits for. */
  private readonly removals = new Map<string, Promise<void>>();

  constructor(
    private readonly installation: QemuInstallation,
    private readonly options: QemuHypervisorOptions,
  ) {}

  private get accelerator(): Accelerator {
    return this.installation.kvm ? "kvm" : "tcg";
  }

  info(): HypervisorInfo {
    const { kvm, version } = this.installation;
    return { kind: kvm ? "qemu-kvm" : "qemu-tcg", version, capabilities: kvm ? ["kvm"] : [] };
  }

  async launch(plan: LaunchPlan, signal: AbortSignal): Promise<RunningVm> {
    // The core never launches a VM twice; a driver that is asked to refuses, as the simulation does.
    if (this.guests.has(plan.uuid) || this.launching.has(plan.uuid)) throw new Error(`${plan.name} runs under QEMU already`);
    this.launching.add(plan.uuid);
    try {
      return await this.start(plan, signal);
    } finally {
      this.launching.delete(plan.uuid);
    }
  }

  private async start(plan: LaunchPlan, signal: AbortSignal): Promise<RunningVm> {
    if (signal.aborted) throw startAborted(plan.name);
    await this.removals.get(plan.uuid);
    const files = runFilesOf(this.options.runDir, plan.uuid);
    const socket = longestSocketPath(files);
    if (Buffer.byteLength(socket) > MAX_SOCKET_PATH) throw runFolderTooDeep(plan.name, socket, MAX_SOCKET_PATH);
    const user = this.userFor(plan);
    const commandLine = qemuCommandLine({ plan, accelerator: this.accelerator, kernel: this.kernelOf(plan, user) });
    let started;
    try {
      started = await startQemu(this.installation.binary, commandLine, files, user, plan.name, signal);
    } catch (error) {
      await fsp.rm(files.dir, { recursive: true, force: true });
      throw this.startError(plan, error);
    }
    const { child, pid, qmp, startedAt } = started;
    const disks = plan.disks.map((disk) => disk.name);
    const record: LaunchRecord = { uuid: plan.uuid, name: plan.name, startedAt: startedAt.toISOString(), pid, disks };
    const guest = new QemuGuest(plan.uuid, plan.name, pid, startedAt, qmp, files.agentSocket, files.consoleSocket, disks, { kind: "child", child }, "paused", () => this.ended(plan.uuid, files));
    try {
      await fsp.writeFile(files.launchRecord, JSON.stringify(record));
      // Before the CPUs run, so that the console keeps the boot from its first byte.
      await guest.connectConsole();
      if (signal.aborted) throw startAborted(plan.name);
      if (plan.maxmemMib > plan.memoryMib) await qmp.execute("balloon", { value: plan.memoryMib * 1024 * 1024 });
      await qmp.execute("cont");
      guest.launched();
      if (plan.waitForGuest) await this.untilGuestUp(guest, plan, signal);
    } catch (error) {
      await this.abandon(guest);
      throw error;
    }
    this.guests.set(plan.uuid, guest);
    return guest;
  }

  private userFor(plan: LaunchPlan): QemuUser | undefined {
    const name = this.options.user;
    if (name === undefined) return undefined;
    const user = lookUpUser(name);
    if (!user) throw hypervisorUserMissing(plan.name, name);
    return user;
  }

  /** A guest ended: it is forgotten, and its folder removed (its sockets lead nowhere now). */
  private ended(uuid: string, files: QemuRunFiles): void {
    this.guests.delete(uuid);
    const removal = fsp.rm(files.dir, { recursive: true, force: true }).finally(() => {
      if (this.removals.get(uuid) === removal) this.removals.delete(uuid);
    });
    this.removals.set(uuid, removal);
  }

  /** Waits for the guest's agent to answer, or for the launch to be aborted (the VM killed, the call's deadline): then START_ABORTED. */
  private async untilGuestUp(guest: QemuGuest, plan: LaunchPlan, signal: AbortSignal): Promise<void> {
    const ended = new AbortController();
    void guest.exited.then((detail) => ended.abort(new Error(`${plan.name} ended before its guest agent answered: ${detail}`)));
    try {
      await guest.waitForAgent(AbortSignal.any([signal, ended.signal]), GUEST_UP_TIMEOUT_MS);
    } catch (error) {
      if (signal.aborted) throw startAborted(plan.name);
      if (error instanceof MonitorTimeoutError) throw guestAgentAbsent(plan.name, `wait ${GUEST_UP_TIMEOUT_MS / 1000} s for the guest`);
      throw error;
    }
  }

  /** Ends a guest whose start failed after its process ran; its folder goes with it. */
  private async abandon(guest: QemuGuest): Promise<void> {
    await guest.kill();
    await guest.exited;
    // Its end removes its folder (ended()), once.
    await this.removals.get(guest.uuid);
  }

  private kernelOf(plan: LaunchPlan, user: QemuUser | undefined): CommandLineInputs["kernel"] {
    if (plan.kernel === "") return undefined;
    const folder = path.join(this.options.kernelsDir, plan.kernel);
    const vmlinuz = path.join(folder, "vmlinuz");
    const initramfs = path.join(folder, "initramfs");
    const found = { vmlinuz: fs.statSync(vmlinuz, { throwIfNoEntry: false }), initramfs: fs.statSync(initramfs, { throwIfNoEntry: false }) };
    if (!found.vmlinuz) throw kernelMissing(plan.name, plan.kernel, "vmlinuz");
    for (const [file, stat] of Object.entries(found)) {
      if (stat && user && !readableBy(stat, user)) throw kernelUnreadable(plan.name, plan.kernel, file, user.name, stat.mode);
    }
    return { vmlinuz, initramfs: found.initramfs ? initramfs : undefined };
  }

  private startError(plan: LaunchPlan, error: unknown): unknown {
    if (error instanceof QemuNotRunnableError) return hypervisorUnavailable(plan.name, error.message);
    if (error instanceof QemuExitedAtStartError && /kvm/i.test(error.output) && this.accelerator === "kvm") {
      return acceleratorUnusable(plan.name, "kvm", error.output);
    }
    return error;
  }

  /**
   * The VMs an earlier Steward left running: each folder of the run folder whose pid is still
   * that VM's QEMU (by its command line's -uuid), reconnected over QMP. Folders of QEMUs that
   * are gone are removed; their VMs are settled by the core, which knows they ran.
   */
  async adopt(): Promise<RunningVm[]> {
    const adopted: RunningVm[] = [];
    const entries = await fsp.readdir(this.options.runDir).catch(() => [] as string[]);
    for (const uuid of entries) {
      const files = runFilesOf(this.options.runDir, uuid);
      const guest = await this.adoptOne(uuid, files);
      if (guest) adopted.push(guest);
      else await fsp.rm(files.dir, { recursive: true, force: true });
    }
    return adopted;
  }

  private async adoptOne(uuid: string, files: QemuRunFiles): Promise<QemuGuest | undefined> {
    const record = await readLaunchRecord(files);
    if (!record || record.uuid !== uuid || !(await isQemuOf(record.pid, uuid))) return undefined;
    let qmp: QmpClient;
    try {
      qmp = await QmpClient.connect(files.qmpSocket);
    } catch {
      return undefined;
    }
    const status = await qmp.execute<{ status: string }>("query-status");
    const guest = new QemuGuest(uuid, record.name, record.pid, new Date(record.startedAt), qmp, files.agentSocket, files.consoleSocket, record.disks, { kind: "adopted" }, guestStatusOf(status.status), () => this.ended(uuid, files));
    await guest.connectConsole().catch(() => undefined);
    this.guests.set(uuid, guest);
    return guest;
  }

  async release(): Promise<void> {
    for (const guest of this.guests.values()) guest.release();
    this.guests.clear();
  }
}

async function readLaunchRecord(files: QemuRunFiles): Promise<LaunchRecord | undefined> {
  try {
    const record = JSON.parse(await fsp.readFile(files.launchRecord, "utf8")) as Partial<LaunchRecord>;
    if (typeof record.uuid !== "string" || typeof record.name !== "string" || typeof record.startedAt !== "string" || !Number.isInteger(record.pid)) return undefined;
    // A record without the disks' names still finds its VM: its stats then name no disk.
    const disks = Array.isArray(record.disks) ? record.disks.filter((disk) => typeof disk === "string") : [];
    return { ...(record as LaunchRecord), disks };
  } catch {
    return undefined;
  }
}

/** Whether a file's mode lets `user` read it, as the kernel checks it for QEMU (its uid, and its primary group alone). */
export function readableBy(stat: Pick<fs.Stats, "mode" | "uid" | "gid">, user: QemuUser): boolean {
  if (stat.uid === user.uid) return (stat.mode & 0o400) !== 0;
  if (stat.gid === user.gid) return (stat.mode & 0o040) !== 0;
  return (stat.mode & 0o004) !== 0;
}
