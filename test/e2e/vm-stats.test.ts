/**
 * GetVmStats and WatchVmStats on the simulated hypervisor, whose guests use the CPU their
 * sim-cpu-percent feature says while they run (and none while paused), and do no I/O.
 */
import * as grpc from "@grpc/grpc-js";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { VmStats } from "../../gen/steward/v1/vm_pb";
import { PowerState, VmClass } from "../../gen/steward/v1/vm_pb";
import { VmService } from "../../gen/steward/v1/vm_service_pb";
import { createClient } from "../../src/client/steward-client";
import { startTestServer } from "../fixtures/test-server";
import { rpcError } from "../fixtures/expect-rpc-error";
import { int } from "../fixtures/property-values";
import { serverForSuite } from "../fixtures/server-with-clients";

const MIB_AS_KIB = 1024n;

/** CPU time as seconds. */
const seconds = (stats: VmStats): number => Number(stats.cpuTime!.seconds) + stats.cpuTime!.nanos / 1e9;

describe("VM stats on the simulated hypervisor", () => {
  const suite = serverForSuite();
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  beforeAll(async () => {
    const properties = { memory: int(300), maxmem: int(600), vcpus: int(2) };
    await suite.vms.createVm({ name: "busy", klass: VmClass.STANDALONE_VM, label: "red", properties });
    await suite.vms.setFeature({ vm: "busy", name: "sim-cpu-percent", value: "150" });
    await suite.vms.createVm({ name: "idle", klass: VmClass.STANDALONE_VM, label: "green" });
    await suite.vms.createVm({ name: "late", klass: VmClass.STANDALONE_VM, label: "blue" });
    await suite.vms.startVm({ vm: "busy" });
    await suite.vms.startVm({ vm: "idle" });
  });

  /** Samples of a watch until `count` came (or `during` says it has enough), then cancels it. */
  async function watched(request: Parameters<typeof suite.vms.watchVmStats>[0], count: number, during?: (got: VmStats[]) => Promise<boolean | void>): Promise<VmStats[]> {
    const abort = new AbortController();
    const got: VmStats[] = [];
    try {
      for await (const message of suite.vms.watchVmStats(request, { signal: abort.signal })) {
        got.push(message.stats!);
        if ((await during?.(got)) === true || got.length >= count) abort.abort();
      }
    } catch (error) {
      if ((error as grpc.ServiceError).code !== grpc.status.CANCELLED) throw error;
    }
    return got;
  }

  it("samples a running VM: its state, memory and ceiling, its volumes by name, and its CPU use over the time since its previous sample", async () => {
    const first = (await suite.vms.getVmStats({ vm: "busy" })).stats!;
    await sleep(400);
    const second = (await suite.vms.getVmStats({ vm: "busy" })).stats!;
    expect(second).toMatchObject({ vm: "busy", state: PowerState.RUNNING, memoryKib: 300n * MIB_AS_KIB, maxMemoryKib: 600n * MIB_AS_KIB, rssKib: 0n });
    expect(second.volumes.map((volume) => volume.volume)).toEqual(["root", "private", "volatile"]);
    expect(second.blockWriteBytes).toBe(0n);
    // 150 % of one CPU (1.5 of its 2 vCPUs), over the 400 ms between the samples.
    const elapsed = (timestampDate(second.time!).getTime() - timestampDate(first.time!).getTime()) / 1000;
    expect(seconds(second) - seconds(first)).toBeCloseTo(1.5 * elapsed, 1);
    expect(second.cpuUsagePercent).toBeGreaterThan(140);
    expect(second.cpuUsagePercent).toBeLessThan(160);
    const idle = (await suite.vms.getVmStats({ vm: "idle" })).stats!;
    expect(idle.cpuUsagePercent).toBe(0);
    expect(idle.maxMemoryKib).toBeGreaterThanOrEqual(idle.memoryKib);
  });

  it("tells a paused VM's stats, whose CPU time stands still", async () => {
    await suite.vms.pauseVm({ vm: "busy" });
    try {
      // GetVmStats measures CPU use over at least 100 ms: the first sample here is one to measure from.
      await sleep(150);
      const first = (await suite.vms.getVmStats({ vm: "busy" })).stats!;
      await sleep(200);
      const second = (await suite.vms.getVmStats({ vm: "busy" })).stats!;
      expect(second.state).toBe(PowerState.PAUSED);
      expect(seconds(second)).toBe(seconds(first));
      expect(second.cpuUsagePercent).toBe(0);
    } finally {
      await suite.vms.unpauseVm({ vm: "busy" });
    }
  });

  it("says NOT_FOUND of no VM, VM_BAD_STATE of a halted one and CAPABILITY_MISSING of the AdminVM, to a sample and to a watch alike", async () => {
    const host = await rpcError(suite.vms.getVmStats({ vm: "dom0" }));
    expect(host).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, info: expect.objectContaining({ reason: "CAPABILITY_MISSING" }) });
    expect(host.details).toMatch(/dom0 is the AdminVM/);
    expect(await rpcError(watched({ vm: "dom0" }, 1))).toMatchObject({ info: expect.objectContaining({ reason: "CAPABILITY_MISSING" }) });
    expect(await rpcError(suite.vms.getVmStats({ vm: "nosuch" }))).toMatchObject({ code: grpc.status.NOT_FOUND });
    expect(await rpcError(suite.vms.getVmStats({ vm: "late" }))).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, info: expect.objectContaining({ reason: "VM_BAD_STATE" }) });
    expect(await rpcError(watched({ vm: "late" }, 1))).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, info: expect.objectContaining({ reason: "VM_BAD_STATE" }) });
    expect(await rpcError(watched({ vm: "nosuch" }, 1))).toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it("refuses a watch interval under 100 ms, naming the field", async () => {
    const refused = await rpcError(watched({ vm: "busy", interval: { seconds: 0n, nanos: 99_000_000 } }, 1));
    expect(refused).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, info: expect.objectContaining({ reason: "STATS_INTERVAL_TOO_SHORT" }) });
    expect(refused.details).toMatch(/^interval: /);
  });

  it("watches one VM at the interval asked, each sample's CPU use over the time since the watch's previous one", async () => {
    const samples = await watched({ vm: "busy", interval: { seconds: 0n, nanos: 150_000_000 } }, 4);
    expect(samples.map((stats) => stats.vm)).toEqual(["busy", "busy", "busy", "busy"]);
    const times = samples.map((stats) => timestampDate(stats.time!).getTime());
    for (let i = 1; i < times.length; i++) {
      expect(times[i] - times[i - 1]).toBeGreaterThanOrEqual(140);
      expect(samples[i].cpuUsagePercent).toBeGreaterThan(130);
      expect(samples[i].cpuUsagePercent).toBeLessThan(170);
    }
  });

  it("watches every running VM, by name, and takes in a VM that starts meanwhile", async () => {
    const samples = await watched({ interval: { seconds: 0n, nanos: 100_000_000 } }, 50, async (got) => {
      if (got.length === 2) await suite.vms.startVm({ vm: "late" });
      return got.at(-1)!.vm === "late";
    });
    expect(samples.slice(0, 2).map((stats) => stats.vm)).toEqual(["busy", "idle"]);
    // A round samples every VM that runs then, by name: the first with the late one ends with it.
    expect(samples.slice(-3).map((stats) => stats.vm)).toEqual(["busy", "idle", "late"]);
    expect(samples.length).toBeLessThanOrEqual(7);
    await suite.vms.killVm({ vm: "late" });
  });

  it("ends a watch of one VM, with OK, once it halts", async () => {
    const samples = await watched({ vm: "idle", interval: { seconds: 0n, nanos: 100_000_000 } }, 100, async (got) => {
      if (got.length === 2) await suite.vms.killVm({ vm: "idle" });
    });
    expect(samples.length).toBeGreaterThanOrEqual(2);
    expect(samples.length).toBeLessThanOrEqual(3);
    await suite.vms.startVm({ vm: "idle" });
  });

  it("samples at the global stats_interval when the watch sets none, read before each wait", async () => {
    await suite.host.setGlobalProperty({ name: "stats_interval", value: int(1) });
    const samples = await watched({ vm: "busy" }, 2);
    const gap = timestampDate(samples[1].time!).getTime() - timestampDate(samples[0].time!).getTime();
    expect(gap).toBeGreaterThanOrEqual(950);
    expect(gap).toBeLessThan(1900);
  });
});

describe("a stats watch when the server stops", () => {
  it("ends with UNAVAILABLE (SERVER_STOPPING), so that the client reconnects", async () => {
    const server = await startTestServer();
    const vms = createClient(VmService, server.tcp);
    try {
      await vms.createVm({ name: "work", klass: VmClass.STANDALONE_VM, label: "red" });
      await vms.startVm({ vm: "work" });
      let samples = 0;
      const watching = (async () => {
        for await (const _ of vms.watchVmStats({ interval: { seconds: 0n, nanos: 100_000_000 } })) {
          if (++samples === 1) void server.stop();
        }
      })();
      const ended = await rpcError(watching);
      expect(ended).toMatchObject({ code: grpc.status.UNAVAILABLE, info: expect.objectContaining({ reason: "SERVER_STOPPING" }) });
    } finally {
      vms.close();
      await server.stop();
    }
  });
});
