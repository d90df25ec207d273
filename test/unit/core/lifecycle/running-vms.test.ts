import { SimGuest, SimHost, SimHypervisor } from "../../../../src/adapters/hypervisor/sim/sim-hypervisor";
import { buildCore, type Core } from "../../../../src/app/build-core";
import { PowerMachine } from "../../../../src/core/lifecycle/power-machine";
import type { LaunchPlan } from "../../../../src/core/model/launch-plan";
import type { GuestStats, RunningVm } from "../../../../src/ports/hypervisor";
import { systemClock } from "../../../../src/ports/clock";
import { testContext } from "../../../fixtures/call-context";
import { LogCapture } from "../../../fixtures/log-capture";
import { storeForEach } from "../../../fixtures/temp-store";

const ctx = testContext();
const EVENTS = { retained: 1000, heartbeatMs: 5000, subscriberBuffer: 1000 };
const standalone = { klass: "StandaloneVM" as const, label: "red", template: "", properties: {}, pool: "", volumePools: {} };

/** A simulator whose guests offer stats: a driver with an optional capability. */
class StatsHypervisor extends SimHypervisor {
  override async launch(plan: LaunchPlan, signal: AbortSignal): Promise<RunningVm> {
    const guest = (await super.launch(plan, signal)) as SimGuest & { stats?: GuestStats };
    return Object.assign(guest, { stats: { sample: async () => ({ time: new Date(), cpuTimeNs: 1, memoryBytes: 2 }) } });
  }
}

describe("running VMs", () => {
  const opened = storeForEach();
  const cores: Core[] = [];
  const logs = new LogCapture();
  const coreOn = async (hypervisor: SimHypervisor): Promise<Core> => {
    const core = buildCore({ store: opened.current, hypervisor, clock: systemClock, log: logs.log }, { events: EVENTS, host: { version: "test", hostname: "h" } });
    await core.adopt();
    cores.push(core);
    return core;
  };
  afterEach(async () => {
    for (const core of cores.splice(0)) await core.release();
  });

  it("are adopted by a core that starts again, in the state they are in, and followed from then on", async () => {
    const host = new SimHost();
    const first = await coreOn(new SimHypervisor(host));
    await first.creation.create({ ...standalone, name: "work" }, ctx);
    await first.starting.start("work", ctx);
    await first.pausing.pause("work", ctx);
    const startedAt = first.readModel.get("work").runtime?.startedAt;
    await first.release();

    const second = await coreOn(new SimHypervisor(host));
    expect(startedAt).toBeInstanceOf(Date);
    expect(second.readModel.get("work")).toMatchObject({ state: "Paused", runtime: expect.objectContaining({ startedAt }) });
    expect(logs.lines).toContainEqual(expect.objectContaining({ vm: "work", state: "Paused", msg: "adopted a running VM" }));
    await second.pausing.unpause("work", ctx);
    await second.stopping.kill("work", ctx);
    expect(second.readModel.get("work").state).toBe("Halted");
    expect(host.guests.size).toBe(0);
    const told = second.store.events.after(0, 1000).filter((e) => e.subject === "work").map((e) => e.name);
    expect(told.slice(-2)).toEqual(["domain-unpaused", "domain-shutdown"]);
  });

  it("that ended while no Steward ran are settled when one starts again", async () => {
    const first = await coreOn(new SimHypervisor(new SimHost()));
    await first.creation.create({ ...standalone, name: "tpl", klass: "TemplateVM" }, ctx);
    await first.creation.create({ ...standalone, name: "dvm", klass: "AppVM", template: "tpl", properties: { template_for_dispvms: true } }, ctx);
    await first.creation.create({ ...standalone, name: "work" }, ctx);
    const disp = await first.creation.createDisposable({ template: "dvm", label: "", idempotencyKey: "" }, ctx);
    await first.starting.start("work", ctx);
    await first.starting.start(disp.name, ctx);
    await first.release();

    // Another host: the guests did not outlive the last Steward (the machine rebooted, say).
    const second = await coreOn(new SimHypervisor(new SimHost()));
    expect(second.readModel.get("work").state).toBe("Halted");
    expect(() => second.readModel.get(disp.name)).toThrow(expect.objectContaining({ reason: "VM_NOT_FOUND" }));
    expect(second.store.runtime.running()).toEqual([]);
    const told = second.store.events.after(0, 1000).filter((e) => e.subject === "work").map((e) => e.name);
    expect(told.at(-1)).toBe("domain-shutdown");
    expect(logs.lines).toContainEqual(expect.objectContaining({ vm: "work", msg: "a VM that ran ended while no Steward ran: settling it" }));
  });

  it("that end unasked pass through Crashed to Halted, and tell domain-shutdown with cause crashed", async () => {
    const host = new SimHost();
    const core = await coreOn(new SimHypervisor(host));
    await core.creation.create({ ...standalone, name: "work" }, ctx);
    await core.starting.start("work", ctx);
    const moves = jest.spyOn(PowerMachine.prototype, "move");
    try {
      [...host.guests.values()][0].crash("QEMU was killed by SIGSEGV unasked");
      expect(moves.mock.calls.map(([, trigger]) => trigger)).toEqual(["guest-crashed", "guest-exited"]);
      // Both moves were taken: Running to Crashed, then Crashed to Halted.
      expect(moves.mock.results.map((result) => result.value as boolean)).toEqual([true, true]);
    } finally {
      moves.mockRestore();
    }
    expect(core.readModel.get("work").state).toBe("Halted");
    const halt = core.store.events.after(0, 1000).filter((e) => e.subject === "work" && e.name === "domain-shutdown").at(-1);
    expect(halt?.kwargs).toEqual({ cause: "crashed", detail: "QEMU was killed by SIGSEGV unasked" });
  });

  it("are marked running from their launch to their settling, and never after a start that failed", async () => {
    const core = await coreOn(new SimHypervisor(new SimHost()));
    await core.creation.create({ ...standalone, name: "work" }, ctx);
    await core.creation.create({ ...standalone, name: "broken" }, ctx);
    await core.features.set("broken", "sim-start-fails", "1", ctx);
    await core.creation.create({ ...standalone, name: "slow" }, ctx);
    await core.features.set("slow", "sim-start-ms", "300", ctx);
    const qid = (name: string) => core.lookup.resolve(name).qid;

    await core.starting.start("work", ctx);
    expect(core.store.runtime.running().map((mark) => mark.qid)).toEqual([qid("work")]);
    await expect(core.starting.start("broken", ctx)).rejects.toMatchObject({ reason: "START_FAILED" });
    const starting = core.starting.start("slow", ctx).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 30));
    await core.stopping.kill("slow", ctx);
    await starting;
    expect(core.store.runtime.running().map((mark) => mark.qid)).toEqual([qid("work")]);
    await core.stopping.kill("work", ctx);
    expect(core.store.runtime.running()).toEqual([]);
  });

  it("that halted but were not settled when the last Steward stopped are settled, without telling of the halt again", async () => {
    const first = await coreOn(new SimHypervisor(new SimHost()));
    await first.creation.create({ ...standalone, name: "work" }, ctx);
    const work = first.lookup.resolve("work");
    // As a Steward leaves it that stops between a halt and its settling.
    first.store.transaction(() => {
      first.store.runtime.markRunning(work.qid, new Date());
      first.store.runtime.markSettling(work.qid);
    });
    const shutdowns = () => first.store.events.after(0, 1000).filter((e) => e.subject === "work" && e.name === "domain-shutdown").length;
    await first.release();
    await coreOn(new SimHypervisor(new SimHost()));
    expect(first.store.runtime.running()).toEqual([]);
    expect(shutdowns()).toBe(0);
    expect(logs.lines).toContainEqual(expect.objectContaining({ vm: "work", msg: expect.stringContaining("was not settled when the last Steward stopped") }));
  });

  it("leave alone, and log, a running guest that no VM of this host is", async () => {
    const host = new SimHost();
    const stray = await new SimHypervisor(host).launch({ uuid: "0b9d7c36-33a2-4c07-a5b0-2b5b2a7d1e55", name: "stray", qid: 9, memoryMib: 1, maxmemMib: 0, vcpus: 1, kernel: "", kernelopts: "", features: {}, disks: [], networkInterfaces: [], devices: [] }, new AbortController().signal);
    await coreOn(new SimHypervisor(host));
    expect(stray.status()).toBe("running");
    expect(logs.lines).toContainEqual(expect.objectContaining({ uuid: stray.uuid, msg: "a running VM that Steward does not know: left as it is" }));
    await stray.kill();
  });

  it("offer the capabilities their driver gives, and say which is missing or why there is none", async () => {
    const withStats = await coreOn(new StatsHypervisor());
    await withStats.creation.create({ ...standalone, name: "work" }, ctx);
    const work = withStats.lookup.resolve("work");
    expect(() => withStats.running.capability(work, "stats")).toThrow(expect.objectContaining({ reason: "VM_BAD_STATE", metadata: { vm: "work", state: "Halted" } }));
    await withStats.starting.start("work", ctx);
    await expect(withStats.running.capability(work, "stats").sample()).resolves.toMatchObject({ cpuTimeNs: 1, memoryBytes: 2 });
    expect(() => withStats.running.capability(work, "hotPlug")).toThrow(expect.objectContaining({ reason: "CAPABILITY_MISSING", metadata: { vm: "work", capability: "hotPlug" } }));
    await withStats.stopping.kill("work", ctx);
  });
});
