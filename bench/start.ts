/**
 * bench/start: the figures of the QEMU issue, against a real `steward serve --hypervisor qemu`:
 *   - StartVm-to-Running of an AppVM with three volumes (root, private, volatile), next to
 *     launching the same QEMU command line by hand (the same machine, devices and disks, with
 *     paths where Steward hands descriptors) and completing the QMP handshake and `cont`:
 *     target ratio at most 1.15, on the median of paired rounds;
 *   - KillVm: target under 100 ms;
 *   - 10 VMs started at once, and the server's RSS with the 10 running.
 * The guests boot nothing (no kernel; the firmware finds no disk): what is measured is the
 * start, not a boot. Under TCG where KVM cannot run guests (GetHostInfo says which).
 *
 *   npm run bench:start [-- --rounds 5]
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import type { ChildProcess } from "node:child_process";
import { HostService } from "../gen/steward/v1/host_service_pb";
import { HypervisorKind } from "../gen/steward/v1/host_pb";
import { VmClass } from "../gen/steward/v1/vm_pb";
import { VmService } from "../gen/steward/v1/vm_service_pb";
import { qemuCommandLine } from "../src/adapters/hypervisor/qemu/qemu-command-line";
import { isQemuOf } from "../src/adapters/hypervisor/qemu/qemu-process";
import { probeQemu } from "../src/adapters/hypervisor/qemu/qemu-probe";
import { QmpClient } from "../src/adapters/hypervisor/qemu/qmp/qmp-client";
import { createClient } from "../src/client/steward-client";
import type { LaunchPlan } from "../src/core/model/launch-plan";
import { rssMib, startSteward, stopAll } from "./child";

const str = (value: string) => ({ kind: { case: "strValue" as const, value } });
const int = (value: number) => ({ kind: { case: "intValue" as const, value: BigInt(value) } });
const GUEST = { kernel: str(""), memory: int(256), maxmem: int(0), vcpus: int(1) };

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rounds: { type: "string", default: "5" } } });
  const rounds = Number(values.rounds);
  const installation = probeQemu();
  if (!installation) throw new Error("qemu-system-x86_64 is not installed");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stb-"));
  const children: ChildProcess[] = [];
  try {
    const { address, pid } = await startSteward(dir, children, ["--hypervisor", "qemu"]);
    const vms = createClient(VmService, address);
    const { host } = await createClient(HostService, address).getHostInfo({});
    console.log(`${installation.version}; accelerator: ${host!.hypervisor === HypervisorKind.QEMU_KVM ? "KVM" : `TCG (${installation.kvmUnusable ?? "KVM not usable"})`}`);
    await vms.createVm({ name: "tpl", klass: VmClass.TEMPLATE_VM, label: "black", properties: GUEST });
    await vms.createVm({ name: "bench", klass: VmClass.APP_VM, label: "red", template: "tpl" });

    const steward: number[] = [];
    const byHand: number[] = [];
    const kills: number[] = [];
    for (let round = 0; round <= rounds; round++) {
      const started = performance.now();
      await vms.startVm({ vm: "bench" });
      const startMs = performance.now() - started;
      const killed = performance.now();
      await vms.killVm({ vm: "bench" });
      const killMs = performance.now() - killed;
      const handMs = await launchByHand(installation.binary, dir);
      // Round 0 warms up (JIT, page cache).
      if (round === 0) continue;
      steward.push(startMs);
      kills.push(killMs);
      byHand.push(handMs);
      console.log(`round ${round}: StartVm ${startMs.toFixed(0)} ms, by hand ${handMs.toFixed(0)} ms (ratio ${(startMs / handMs).toFixed(2)}), KillVm ${killMs.toFixed(0)} ms`);
    }
    const ratios = steward.map((ms, at) => ms / byHand[at]);
    console.log(
      `StartVm to Running: median ${median(steward).toFixed(0)} ms; the same command line by hand with the QMP handshake: ${median(byHand).toFixed(0)} ms; ` +
        `median paired ratio ${median(ratios).toFixed(2)} (target ≤ 1.15): ${median(ratios) <= 1.15 ? "met" : "NOT met"}`,
    );
    console.log(`KillVm: median ${median(kills).toFixed(0)} ms, most ${Math.max(...kills).toFixed(0)} ms (target < 100 ms): ${median(kills) < 100 ? "met" : "NOT met"}`);

    const names = Array.from({ length: 10 }, (_, i) => `many-${i}`);
    for (const name of names) await vms.createVm({ name, klass: VmClass.APP_VM, label: "blue", template: "tpl" });
    const rssBefore = rssMib(pid);
    const together = performance.now();
    await Promise.all(names.map((vm) => vms.startVm({ vm })));
    console.log(`10 VMs started at once: ${(performance.now() - together).toFixed(0)} ms in all`);
    console.log(`server RSS: ${rssBefore.toFixed(0)} MiB with no VM running, ${rssMib(pid).toFixed(0)} MiB with 10 running`);
    await Promise.all(names.map((vm) => vms.killVm({ vm })));
    vms.close();
  } finally {
    await stopAll(children);
    // A server that stops leaves its VMs running, as it should: a run cut short ends its QEMUs here.
    await endQemusOf(path.join(dir, "data", "qemu"));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Kills, by pid, each QEMU a run folder's VMs still have. */
async function endQemusOf(runDir: string): Promise<void> {
  for (const uuid of fs.existsSync(runDir) ? fs.readdirSync(runDir) : []) {
    const pidfile = path.join(runDir, uuid, "qemu.pid");
    const pid = fs.existsSync(pidfile) ? Number(fs.readFileSync(pidfile, "utf8").trim()) : NaN;
    if (Number.isInteger(pid) && (await isQemuOf(pid, uuid))) process.kill(pid, "SIGKILL");
  }
}

/**
 * Steward's command line for the same VM, with paths where Steward hands descriptors, launched
 * by hand: the time from spawning QEMU to its QMP handshake done and `cont` answered.
 */
async function launchByHand(binary: string, dir: string): Promise<number> {
  const folder = fs.mkdtempSync(path.join(dir, "hand-"));
  const disks = ["root", "private", "volatile"].map((name, at) => {
    const file = path.join(folder, `${name}.img`);
    fs.writeFileSync(file, "");
    fs.truncateSync(file, [10, 2, 10][at] * 1024 ** 3);
    return { name, path: file, format: "raw" as const, readOnly: false };
  });
  const plan: LaunchPlan = { uuid: "00000000-0000-4000-8000-000000000001", name: "by-hand", qid: 1, memoryMib: 256, maxmemMib: 0, vcpus: 1, kernel: "", kernelopts: "", features: {}, disks, networkInterfaces: [], devices: [] };
  const { args, files } = qemuCommandLine({ plan, accelerator: probeQemu()!.kvm ? "kvm" : "tcg" });
  const sockets = ["qmp", "console", "agent"];
  const byPath = withPaths(args, files.map((file) => file.path), (fd) => path.join(folder, `${sockets[fd - 3]}.sock`));
  const started = performance.now();
  const child = spawn(binary, byPath, { stdio: "ignore" });
  try {
    const qmpSocket = path.join(folder, "qmp.sock");
    let qmp: QmpClient | undefined;
    while (!qmp) {
      if (child.exitCode !== null) throw new Error(`QEMU by hand exited with ${child.exitCode}: ${byPath.join(" ")}`);
      qmp = await QmpClient.connect(qmpSocket).catch(() => undefined);
      if (!qmp) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await qmp.execute("cont");
    const ms = performance.now() - started;
    qmp.close();
    return ms;
  } finally {
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
    fs.rmSync(folder, { recursive: true, force: true });
  }
}

/** The command line with each socket's descriptor replaced by a path QEMU binds, and each disk's fd set by its file. */
function withPaths(args: string[], files: string[], socketPath: (fd: number) => string): string[] {
  const firstFileFd = 6;
  const out: string[] = [];
  for (let at = 0; at < args.length; at++) {
    if (args[at] === "-add-fd") {
      at++;
      continue;
    }
    out.push(
      args[at]
        .replace(/^socket,id=(\w+),fd=(\d+),/, (_, id: string, fd: string) => `socket,id=${id},path=${socketPath(Number(fd))},`)
        .replace(/\/dev\/fdset\/(\d+)/, (_, set: string) => files[Number(set) - firstFileFd]),
    );
  }
  return out;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
