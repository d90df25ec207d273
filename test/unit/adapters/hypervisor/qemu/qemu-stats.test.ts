import * as fs from "node:fs";
import * as path from "node:path";
import { interfaceCounters, residentBytesOfStatus, threadCpuNs, ticksOfStat } from "../../../../../src/adapters/hypervisor/qemu/host-counters";
import { deviceIdOfQdev, QemuStats } from "../../../../../src/adapters/hypervisor/qemu/qemu-stats";
import { MonitorCommandError } from "../../../../../src/adapters/hypervisor/qemu/qmp/monitor-connection";
import type { QmpClient } from "../../../../../src/adapters/hypervisor/qemu/qmp/qmp-client";
import { makeTempDir, removeDir } from "../../../../fixtures/temp-dir";

const blockStats = (qdev: string, bytes: number) => ({ qdev, stats: { rd_bytes: bytes, wr_bytes: 2 * bytes, rd_operations: 3, wr_operations: 4 } });

/** A monitor that answers the stats' queries as QEMU 7.2 does, for this process's own main thread as the vCPUs'. */
function fakeMonitor(answers: { balloon?: number; cpus?: number[] } = {}): QmpClient & { asked: string[] } {
  const asked: string[] = [];
  const replies: Record<string, () => unknown> = {
    "query-cpus-fast": () => (answers.cpus ?? [process.pid, process.pid]).map((tid, index) => ({ "cpu-index": index, "thread-id": tid, target: "x86_64" })),
    "query-blockstats": () => [blockStats("/machine/peripheral/virtio-disk1/virtio-backend", 100), blockStats("/machine/peripheral/virtio-disk0/virtio-backend", 10), { device: "", qdev: "", stats: {} }],
    "query-memory-size-summary": () => ({ "base-memory": 512 * 2 ** 20, "plugged-memory": 0 }),
    "query-balloon": () => {
      if (answers.balloon === undefined) throw new MonitorCommandError("query-balloon", "DeviceNotActive", "No balloon device has been activated");
      return { actual: answers.balloon };
    },
  };
  return {
    asked,
    execute: async (command: string) => {
      asked.push(command);
      return replies[command]();
    },
  } as unknown as QmpClient & { asked: string[] };
}

describe("a QEMU guest's stats", () => {
  it("names each disk's counters by the plan's order of devices, and leaves out a disk whose device is gone", async () => {
    const sample = await new QemuStats(fakeMonitor({ balloon: 256 * 2 ** 20 }), process.pid, ["root", "private", "volatile"], []).sample();
    expect(sample.disks).toEqual([
      { name: "root", readBytes: 10, writeBytes: 20, readOps: 3, writeOps: 4 },
      { name: "private", readBytes: 100, writeBytes: 200, readOps: 3, writeOps: 4 },
    ]);
    expect(sample.memoryBytes).toBe(256 * 2 ** 20);
    expect(sample.maxMemoryBytes).toBe(512 * 2 ** 20);
  });

  it("counts a thread that serves several vCPUs (single-threaded TCG) once, and reads the process's resident memory", async () => {
    const before = await threadCpuNs(process.pid, process.pid);
    const sample = await new QemuStats(fakeMonitor({ balloon: 1 }), process.pid, [], []).sample();
    const after = await threadCpuNs(process.pid, process.pid);
    // The thread's time, between what it was before and after: twice it would be past `after`.
    expect(sample.cpuTimeNs).toBeGreaterThanOrEqual(before);
    expect(sample.cpuTimeNs).toBeLessThanOrEqual(after);
    expect(sample.rssBytes).toBeGreaterThan(2 ** 20);
  });

  it("tells the boot memory where the guest has no balloon, and asks the boot memory once", async () => {
    const monitor = fakeMonitor();
    const stats = new QemuStats(monitor, process.pid, [], []);
    expect((await stats.sample()).memoryBytes).toBe(512 * 2 ** 20);
    await stats.sample();
    expect(monitor.asked.filter((command) => command === "query-memory-size-summary")).toHaveLength(1);
  });

  it("never tells less CPU time than before, when a vCPU's thread is gone", async () => {
    const both = fakeMonitor({ balloon: 1, cpus: [process.pid] });
    const stats = new QemuStats(both, process.pid, [], []);
    const first = await stats.sample();
    (both as unknown as { execute: (command: string) => Promise<unknown> }).execute = async (command) =>
      command === "query-cpus-fast" ? [] : fakeMonitor({ balloon: 1 }).execute(command);
    expect((await stats.sample()).cpuTimeNs).toBe(first.cpuTimeNs);
  });

  it("finds the device id in a block backend's qdev path", () => {
    expect(deviceIdOfQdev("/machine/peripheral/virtio-disk12/virtio-backend")).toBe("virtio-disk12");
    expect(deviceIdOfQdev("")).toBe("");
  });
});

describe("the host's counters", () => {
  it("reads utime and stime from a stat line whose command holds spaces and parentheses", () => {
    const stat = "4242 (qemu (vm one)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 150 25 0 0 20 0 3 0 100 1000000 500";
    expect(ticksOfStat(stat)).toBe(175);
  });

  it("reads VmRSS in bytes, and 0 for a process that has none (a zombie)", () => {
    expect(residentBytesOfStatus("Name:\tqemu\nVmRSS:\t   20480 kB\nThreads:\t5\n")).toBe(20480 * 1024);
    expect(residentBytesOfStatus("Name:\tqemu\nState:\tZ (zombie)\n")).toBe(0);
  });

  it("turns a tap's counters round to the guest's view, and finds none of a device that is gone", async () => {
    const sys = makeTempDir();
    try {
      const statistics = path.join(sys, "vif3.0", "statistics");
      fs.mkdirSync(statistics, { recursive: true });
      for (const [counter, value] of Object.entries({ rx_bytes: 1000, tx_bytes: 2000, rx_packets: 10, tx_packets: 20 })) fs.writeFileSync(path.join(statistics, counter), `${value}\n`);
      expect(await interfaceCounters("vif3.0", sys)).toEqual({ name: "vif3.0", rxBytes: 2000, txBytes: 1000, rxPackets: 20, txPackets: 10 });
      expect(await interfaceCounters("vif9.0", sys)).toBeUndefined();
    } finally {
      removeDir(sys);
    }
  });

  it("reads a real interface's counters from /sys", async () => {
    const lo = await interfaceCounters("lo");
    expect(lo).toMatchObject({ name: "lo" });
    expect(Number.isInteger(lo!.rxBytes) && lo!.rxBytes >= 0).toBe(true);
  });
});
