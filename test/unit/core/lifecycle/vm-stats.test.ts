import { SimGuest, SimHost, SimHypervisor } from "../../../../src/adapters/hypervisor/sim/sim-hypervisor";
import { buildCore, type Core } from "../../../../src/app/build-core";
import { usagePercent } from "../../../../src/core/lifecycle/vm-stats";
import { systemClock } from "../../../../src/ports/clock";
import { testContext } from "../../../fixtures/call-context";
import { LogCapture } from "../../../fixtures/log-capture";
import { storeForEach } from "../../../fixtures/temp-store";

const ctx = testContext();
const EVENTS = { retained: 1000, heartbeatMs: 5000, subscriberBuffer: 1000 };
const standalone = { klass: "StandaloneVM" as const, label: "red", template: "", properties: {}, pool: "", volumePools: {} };

describe("VM stats in the core", () => {
  const opened = storeForEach();
  const cores: Core[] = [];
  const host = new SimHost();
  let core: Core;
  beforeEach(async () => {
    core = buildCore({ store: opened.current, hypervisor: new SimHypervisor(host), clock: systemClock, log: new LogCapture().log }, { events: EVENTS, host: { version: "test", hostname: "h" } });
    await core.adopt();
    cores.push(core);
    await core.creation.create({ ...standalone, name: "work" }, ctx);
    await core.starting.start("work", ctx);
  });
  afterEach(async () => {
    // Let go of the guests first: their ends are the store's no more.
    for (const made of cores.splice(0)) await made.release();
    for (const guest of [...host.guests.values()]) await guest.kill();
  });

  const guest = (): SimGuest => [...host.guests.values()][0];

  it("says VM_BAD_STATE, not a failure, of a VM whose end fails the sample before the end is told", async () => {
    const dying = guest();
    // As QEMU's monitor closes before its process's exit is seen.
    Object.assign(dying, {
      stats: {
        sample: async () => {
          setTimeout(() => dying.crash("QEMU died"), 50);
          throw new Error("the monitor closed");
        },
      },
    });
    await expect(core.stats.sample("work", ctx)).rejects.toMatchObject({ reason: "VM_BAD_STATE", metadata: { vm: "work", state: "Halted" } });
  });

  it("passes on a sample's failure while the VM runs on", async () => {
    Object.assign(guest(), { stats: { sample: async () => Promise.reject(new Error("query-blockstats timed out")) } });
    const started = Date.now();
    await expect(core.stats.sample("work", ctx)).rejects.toThrow("query-blockstats timed out");
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
  });

  it("ends a watch of one VM as soon as it halts, not at the end of the interval", async () => {
    const seen: string[] = [];
    const started = Date.now();
    for await (const view of core.stats.watch({ vm: "work", intervalMs: 60_000 }, ctx, new AbortController().signal)) {
      seen.push(view.vm);
      setTimeout(() => void core.stopping.kill("work", ctx), 50);
    }
    expect(seen).toEqual(["work"]);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("waits out an interval longer than Node's longest timer, rather than sampling at once", async () => {
    const abort = new AbortController();
    const seen: number[] = [];
    const watching = (async () => {
      for await (const view of core.stats.watch({ intervalMs: 30 * 24 * 3600 * 1000 }, { ...ctx, signal: abort.signal }, new AbortController().signal)) seen.push(view.time.getTime());
    })();
    await new Promise((resolve) => setTimeout(resolve, 300));
    abort.abort();
    await watching;
    expect(seen).toHaveLength(1);
  });

  it("measures GetVmStats' CPU use over at least 100 ms, whoever sampled just before", async () => {
    await core.features.set("work", "sim-cpu-percent", "80", ctx);
    // The feature is the guest's from its next start.
    await core.stopping.kill("work", ctx);
    await core.starting.start("work", ctx);
    await new Promise((resolve) => setTimeout(resolve, 150));
    await core.stats.sample("work", ctx);
    const soon = await core.stats.sample("work", ctx);
    expect(soon.cpuUsagePercent).toBeGreaterThan(70);
    expect(soon.cpuUsagePercent).toBeLessThan(90);
  });

  it("works CPU use out as CPU time over wall time, in percent of one CPU", () => {
    const from = { time: new Date(1000), cpuTimeNs: 0 };
    expect(usagePercent(from, { time: new Date(1500), cpuTimeNs: 750e6 })).toBe(150);
    expect(usagePercent(from, { time: new Date(1000), cpuTimeNs: 5 })).toBe(0);
    expect(usagePercent(from, { time: new Date(2000), cpuTimeNs: -1 })).toBe(0);
  });
});
