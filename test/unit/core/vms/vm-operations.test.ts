import { SimHost, SimHypervisor } from "../../../../src/adapters/hypervisor/sim/sim-hypervisor";
import type { Core } from "../../../../src/app/build-core";
import type { VmParticipant } from "../../../../src/core/vms/vm-participant";
import { testContext } from "../../../fixtures/call-context";
import { coreForEach } from "../../../fixtures/test-core";

const ctx = testContext();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const base = { label: "red", template: "", pool: "", volumePools: {} };

/** How a call ended: "ok", or its reason. */
async function outcome(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return "ok";
  } catch (error) {
    return (error as { reason?: string }).reason ?? String(error);
  }
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !condition(); i++) await sleep(2);
  if (!condition()) throw new Error("the condition never held");
}

/**
 * One operation per VM: racing mutations of one VM always end as one of their serial orders.
 * The VM's netvm boots slowly, so that a start is under way for a while: another operation
 * arriving then is the race. Each round issues the two calls in a varying order and delay.
 */
describe("operations on one VM", () => {
  const host = new SimHost();
  /** What a slow copy of a clone's source saw of its memory, when it began and when it ended. */
  const copies: { began: unknown; ended: unknown }[] = [];
  /** What a slow set-up of a DispVM saw of its AppVM's label, when it began and when it ended. */
  const dispCopies: { began: unknown; ended: unknown }[] = [];
  const slowCopy = (core: () => Core): VmParticipant => ({
    name: "slow-copy",
    onCreate: async (vm) => {
      if (vm.klass !== "DispVM") return;
      const appvm = core().store.vms.byQid(Number(vm.properties.template))!;
      const began = core().properties.get(`uuid:${appvm.uuid}`, "label").value;
      await sleep(20);
      dispCopies.push({ began, ended: core().properties.get(`uuid:${appvm.uuid}`, "label").value });
    },
    onClone: async (source) => {
      const began = core().properties.get(`uuid:${source.uuid}`, "memory").value;
      await sleep(20);
      copies.push({ began, ended: core().properties.get(`uuid:${source.uuid}`, "memory").value });
    },
  });
  const built = coreForEach(
    () => new SimHypervisor(host),
    () => [slowCopy(() => built.current)],
  );
  let core: Core;

  beforeEach(async () => {
    core = built.current;
    copies.length = 0;
    dispCopies.length = 0;
    await core.creation.create({ ...base, name: "sys-net", klass: "StandaloneVM", properties: { provides_network: true } }, ctx);
    await core.features.set("sys-net", "sim-start-ms", "30", ctx);
  });

  const makeWork = async (name = "work") => {
    const vm = await core.creation.create({ ...base, name, klass: "StandaloneVM", properties: { netvm: "sys-net" } }, ctx);
    return vm.uuid;
  };
  /**
   * Runs `first` and `second` against each other: in even rounds `first` is called first, in odd
   * ones `second`, the other after a delay that grows with the round; how each ended.
   */
  const race = async (round: number, first: () => Promise<unknown>, second: () => Promise<unknown>): Promise<[string, string]> => {
    const [early, late] = round % 2 === 0 ? [first, second] : [second, first];
    const earlier = outcome(early());
    await sleep((round >> 1) * 8);
    const later = outcome(late());
    const [a, b] = [await earlier, await later];
    return round % 2 === 0 ? [a, b] : [b, a];
  };
  const stopAll = async () => {
    for (const vm of core.readModel.list({ filter: {}, pageSize: 100, pageToken: "", full: false }).vms) {
      if (vm.klass !== "AdminVM" && vm.state !== "Halted") await core.stopping.kill(vm.name, ctx);
    }
  };

  it("Start against Remove: never a removed VM that runs", async () => {
    const seen = new Set<string>();
    for (let round = 0; round < 12; round++) {
      const uuid = await makeWork();
      const [start, remove] = await race(round, () => core.starting.start("work", ctx), () => core.removal.remove("work", false, ctx));
      const result = `${start} / ${remove}`;
      seen.add(result);
      // Start first: the running VM cannot be removed. Remove first: there is nothing to start,
      // and nothing of its netvm chain started either.
      expect(["ok / VM_NOT_HALTED", "VM_NOT_FOUND / ok"]).toContain(result);
      const exists = core.lookup.find(`uuid:${uuid}`) !== undefined;
      expect(host.guests.has(uuid)).toBe(exists && result.startsWith("ok"));
      if (!exists) expect(core.readModel.get("sys-net").state).toBe("Halted");
      await stopAll();
      if (exists) await core.removal.remove("work", false, ctx);
    }
    // Both orders came up: the remove arrived while the start waited for the netvm, and after.
    expect(seen).toEqual(new Set(["ok / VM_NOT_HALTED", "VM_NOT_FOUND / ok"]));
  });

  it("Rename against Start: the start runs the VM it named, or finds no such VM", async () => {
    const seen = new Set<string>();
    for (let round = 0; round < 12; round++) {
      const uuid = await makeWork();
      const [start, rename] = await race(round, () => core.starting.start("work", ctx), () => core.renaming.rename("work", "job", ctx));
      const result = `${start} / ${rename}`;
      seen.add(result);
      expect(["ok / VM_NOT_HALTED", "VM_NOT_FOUND / ok"]).toContain(result);
      expect(host.guests.has(uuid)).toBe(result.startsWith("ok"));
      await stopAll();
      await core.removal.remove(`uuid:${uuid}`, false, ctx);
    }
    expect(seen).toEqual(new Set(["ok / VM_NOT_HALTED", "VM_NOT_FOUND / ok"]));
  });

  it("Clone against SetProperty: the clone is of one state of its source, never of one half changed", async () => {
    await makeWork();
    const results = new Set<string>();
    for (let round = 0; round < 8; round++) {
      const memory = 1000 + round;
      const clone = core.cloning.clone({ vm: "work", newName: `copy${round}`, klass: undefined, pool: "", volumePools: {} }, ctx);
      await sleep(round * 4);
      await core.properties.set("work", "memory", memory, ctx);
      const made = await clone;
      const copy = copies.at(-1)!;
      expect(copy.ended).toBe(copy.began);
      const cloned = core.properties.get(made.name, "memory").value;
      expect(cloned).toBe(copy.began);
      results.add(cloned === memory ? "after" : "before");
    }
    expect(results.has("before")).toBe(true);
  });

  it("CreateDisposableVm against SetProperty on its AppVM: the DispVM is made from one state of it", async () => {
    await core.creation.create({ ...base, name: "tpl", klass: "TemplateVM", properties: {} }, ctx);
    await core.creation.create({ ...base, name: "dvm", klass: "AppVM", template: "tpl", properties: { template_for_dispvms: true } }, ctx);
    for (let round = 0; round < 6; round++) {
      const label = round % 2 ? "green" : "blue";
      const made = core.creation.createDisposable({ template: "dvm", label: "", idempotencyKey: "" }, ctx);
      await sleep(round * 4);
      await core.properties.set("dvm", "label", label, ctx);
      const disp = await made;
      const copy = dispCopies.at(-1)!;
      expect(copy.ended).toBe(copy.began);
      expect(disp.label).toBe(copy.began);
    }
  });

  it("lets reads through while an operation on the VM runs", async () => {
    await makeWork();
    const starting = core.starting.start("work", ctx);
    await until(() => core.readModel.get("sys-net").state === "Transient");
    // The start holds nothing that a read waits for.
    expect(core.readModel.get("work").state).toBe("Halted");
    expect(core.properties.get("work", "memory").value).toBe(400);
    await starting;
  });

  it("runs operations on different VMs side by side", async () => {
    await makeWork("work");
    await core.features.set("work", "sim-start-ms", "60", ctx);
    await core.creation.create({ ...base, name: "other", klass: "StandaloneVM", properties: {} }, ctx);
    await core.starting.start("sys-net", ctx);
    const starting = core.starting.start("work", ctx);
    await until(() => core.readModel.get("work").state === "Transient");
    // work's start is under way; a change to another VM does not wait for it.
    await core.properties.set("other", "memory", 777, ctx);
    expect(core.readModel.get("work").state).toBe("Transient");
    await starting;
  });
});
