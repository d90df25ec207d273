/**
 * A QEMU guest's resource use, sampled: QMP tells its vCPUs' threads, its balloon, its boot
 * memory and each block device's I/O; the host's kernel tells those threads' CPU time and the
 * process's resident memory.
 */
import type { DiskIoStats, GuestStats, GuestStatsSample } from "../../../ports/hypervisor";
import { diskDeviceId } from "./qemu-command-line";
import { interfaceCounters, residentBytes, threadCpuNs } from "./host-counters";
import { MonitorCommandError } from "./qmp/monitor-connection";
import type { QmpClient } from "./qmp/qmp-client";

interface QmpCpu {
  "thread-id": number;
}

interface QmpBlockStats {
  qdev?: string;
  stats: { rd_bytes: number; wr_bytes: number; rd_operations: number; wr_operations: number };
}

export class QemuStats implements GuestStats {
  /** The most CPU time told so far: a vCPU unplugged takes its thread's time with it, and the total must not go back. */
  private cpuTimeNs = 0;
  private bootMemory: number | undefined;

  constructor(
    private readonly qmp: QmpClient,
    private readonly pid: number,
    /** The plan's disks' names, in its order: the disk at index i is device virtio-disk<i>. */
    private readonly disks: readonly string[],
    /** The host sides of its network interfaces. */
    private readonly interfaces: readonly string[],
  ) {}

  async sample(): Promise<GuestStatsSample> {
    const [cpus, blocks, maxMemoryBytes] = await Promise.all([
      this.qmp.execute<QmpCpu[]>("query-cpus-fast"),
      this.qmp.execute<QmpBlockStats[]>("query-blockstats"),
      this.maxMemory(),
    ]);
    const [memoryBytes, cpuTimeNs, rssBytes, interfaces] = await Promise.all([
      this.balloonSize(maxMemoryBytes),
      this.vcpuTimeNs(cpus),
      residentBytes(this.pid),
      Promise.all(this.interfaces.map((name) => interfaceCounters(name))),
    ]);
    return {
      time: new Date(),
      cpuTimeNs,
      memoryBytes,
      maxMemoryBytes,
      rssBytes,
      disks: this.diskStats(blocks),
      interfaces: interfaces.filter((counters) => counters !== undefined),
    };
  }

  /** The memory the guest booted with (query-memory-size-summary's base memory), the balloon's ceiling; it does not change. */
  private async maxMemory(): Promise<number> {
    this.bootMemory ??= (await this.qmp.execute<{ "base-memory": number }>("query-memory-size-summary"))["base-memory"];
    return this.bootMemory;
  }

  /** The balloon's size; the boot memory where the guest has no balloon device. */
  private async balloonSize(bootMemory: number): Promise<number> {
    try {
      return (await this.qmp.execute<{ actual: number }>("query-balloon")).actual;
    } catch (error) {
      if (error instanceof MonitorCommandError) return bootMemory;
      throw error;
    }
  }

  /** The CPU time of the vCPUs' threads (one thread serves them all under single-threaded TCG: counted once). */
  private async vcpuTimeNs(cpus: readonly QmpCpu[]): Promise<number> {
    const threads = [...new Set(cpus.map((cpu) => cpu["thread-id"]))];
    const times = await Promise.all(threads.map((tid) => threadCpuNs(this.pid, tid)));
    this.cpuTimeNs = Math.max(this.cpuTimeNs, times.reduce((sum, ns) => sum + ns, 0));
    return this.cpuTimeNs;
  }

  /** Each of the plan's disks' counters, found by its device's id; a disk whose device is gone is left out. */
  private diskStats(blocks: readonly QmpBlockStats[]): DiskIoStats[] {
    const byDevice = new Map(blocks.map((block) => [deviceIdOfQdev(block.qdev ?? ""), block.stats]));
    return this.disks.flatMap((name, index) => {
      const stats = byDevice.get(diskDeviceId(index));
      if (!stats) return [];
      return [{ name, readBytes: stats.rd_bytes, writeBytes: stats.wr_bytes, readOps: stats.rd_operations, writeOps: stats.wr_operations }];
    });
  }
}

/** The device id in a block backend's qdev path, "/machine/peripheral/virtio-disk0/virtio-backend"; the path itself where it has none. */
export function deviceIdOfQdev(qdev: string): string {
  return /^\/machine\/peripheral\/([^/]+)\//.exec(qdev)?.[1] ?? qdev;
}
