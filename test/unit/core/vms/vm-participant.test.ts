import { SimHypervisor } from "../../../../src/adapters/hypervisor/sim/sim-hypervisor";
import type { Core } from "../../../../src/app/build-core";
import { declareReasons, DomainError } from "../../../../src/core/errors";
import type { LaunchPlan } from "../../../../src/core/model/launch-plan";
import type { VmParticipant } from "../../../../src/core/vms/vm-participant";
import type { Hypervisor } from "../../../../src/ports/hypervisor";
import { testContext } from "../../../fixtures/call-context";
import { coreForEach } from "../../../fixtures/test-core";

const R = declareReasons("participant test", ["PARTICIPANT_REFUSED"]);
type Hook = "onCreate" | "onClone" | "beforeStart" | "afterHalt" | "onRemove" | "afterRemove";

/** How long settling a halted VM takes each participant; 0 for no time. */
const slowSettle = { ms: 0 };

/** A participant that notes each hook it runs and each undo, and fails the hooks it is told to. */
function recorder(name: string, log: string[], failing: ReadonlySet<Hook>): VmParticipant {
  const step = (hook: Hook, vm: { name: string }) => {
    log.push(`${name} ${hook} ${vm.name}`);
    if (failing.has(hook)) throw new DomainError("failed-precondition", R.PARTICIPANT_REFUSED, `${name} refuses ${hook}`);
    return () => void log.push(`${name} undoes ${hook} ${vm.name}`);
  };
  return {
    name,
    onCreate: async (vm) => step("onCreate", vm),
    onClone: async (_source, clone) => step("onClone", clone),
    beforeStart: async (vm, plan) => {
      const undo = step("beforeStart", vm);
      plan.disks.push({ name, path: `/pools/${name}/${vm.name}`, format: "raw", readOnly: false });
      return undo;
    },
    afterHalt: async (vm, halt) => {
      if (slowSettle.ms > 0) await new Promise((resolve) => setTimeout(resolve, slowSettle.ms));
      log.push(`${name} afterHalt ${vm.name} (${halt.cause})`);
      if (failing.has("afterHalt")) throw new Error(`${name} cannot settle ${vm.name}`);
    },
    onRemove: async (vm) => step("onRemove", vm),
    afterRemove: async (vm) => {
      log.push(`${name} afterRemove ${vm.name}`);
      if (failing.has("afterRemove")) throw new Error(`${name} cannot finish removing ${vm.name}`);
    },
  };
}

/** The simulator, noting the plans it launches. */
class PlanSpy extends SimHypervisor {
  readonly plans: LaunchPlan[] = [];
  override launch(plan: LaunchPlan, signal: AbortSignal) {
    this.plans.push(structuredClone(plan));
    return super.launch(plan, signal);
  }
}

describe("VM participants", () => {
  const log: string[] = [];
  const failing = new Set<Hook>();
  let spy: PlanSpy;
  const built = coreForEach(
    (): Hypervisor => (spy = new PlanSpy()),
    () => [recorder("storage", log, new Set()), recorder("network", log, failing)],
  );
  let core: Core;
  const ctx = testContext();
  const create = (name: string) =>
    core.creation.create({ name, klass: "StandaloneVM", label: "red", template: "", properties: {}, pool: "", volumePools: {} }, ctx);
  const eventNames = (subject: string) => core.store.events.after(0, 10_000).filter((e) => e.subject === subject).map((e) => e.name);

  beforeEach(() => {
    core = built.current;
    log.length = 0;
    failing.clear();
    slowSettle.ms = 0;
  });

  it("run their hooks in the order listed, through a VM's whole life", async () => {
    await create("work");
    await core.cloning.clone({ vm: "work", newName: "copy", klass: undefined, pool: "", volumePools: {} }, ctx);
    await core.starting.start("work", ctx);
    await core.stopping.shutdown("work", { force: false, wait: true, timeoutMs: undefined }, ctx);
    await core.removal.remove("work", false, ctx);
    expect(log).toEqual([
      "storage onCreate work",
      "network onCreate work",
      "storage onClone copy",
      "network onClone copy",
      "storage beforeStart work",
      "network beforeStart work",
      "storage afterHalt work (shutdown)",
      "network afterHalt work (shutdown)",
      "storage onRemove work",
      "network onRemove work",
      "storage afterRemove work",
      "network afterRemove work",
    ]);
    // What they added to the plan reached the hypervisor, in their order.
    expect(spy.plans[0].disks.map((disk) => disk.name)).toEqual(["storage", "network"]);
  });

  it("leave a VM halted, with the earlier participants' work undone, when one fails before start", async () => {
    await create("work");
    failing.add("beforeStart");
    await expect(core.starting.start("work", ctx)).rejects.toMatchObject({ reason: "PARTICIPANT_REFUSED" });
    expect(log).toEqual(["storage onCreate work", "network onCreate work", "storage beforeStart work", "network beforeStart work", "storage undoes beforeStart work"]);
    expect(core.readModel.get("work").state).toBe("Halted");
    expect(spy.plans).toEqual([]);
    expect(eventNames("work").filter((name) => name.startsWith("domain-") && !name.includes("tag"))).toEqual(["domain-add", "domain-pre-start", "domain-start-failed"]);
    // Nothing is left half-made: once the participant agrees, the VM starts.
    failing.clear();
    await expect(core.starting.start("work", ctx)).resolves.toBe("Running");
  });

  it("make no VM, and tell of none, when one fails while it is made", async () => {
    failing.add("onCreate");
    await expect(create("work")).rejects.toMatchObject({ reason: "PARTICIPANT_REFUSED" });
    expect(log).toEqual(["storage onCreate work", "network onCreate work", "storage undoes onCreate work"]);
    expect(() => core.readModel.get("work")).toThrow(expect.objectContaining({ reason: "VM_NOT_FOUND" }));
    expect(eventNames("work")).toEqual([]);
  });

  it("keep a VM whose removal one of them refuses, with the others' part undone", async () => {
    await create("work");
    failing.add("onRemove");
    await expect(core.removal.remove("work", false, ctx)).rejects.toMatchObject({ reason: "PARTICIPANT_REFUSED" });
    expect(log.slice(2)).toEqual(["storage onRemove work", "network onRemove work", "storage undoes onRemove work"]);
    expect(log.some((line) => line.includes("afterRemove"))).toBe(false);
    expect(core.readModel.get("work").name).toBe("work");
    expect(eventNames("work")).not.toContain("domain-delete");
  });

  it("settle a halted VM before any operation that was waiting for it runs", async () => {
    await create("work");
    await core.starting.start("work", ctx);
    log.length = 0;
    // The removal waits behind the kill; the VM halts during the kill; its settling goes first.
    const killed = core.stopping.kill("work", ctx);
    const removed = core.removal.remove("work", false, ctx);
    await Promise.all([killed, removed]);
    expect(log).toEqual([
      "storage afterHalt work (killed)",
      "network afterHalt work (killed)",
      "storage onRemove work",
      "network onRemove work",
      "storage afterRemove work",
      "network afterRemove work",
    ]);
  });

  it("answer a shutdown that waits once the VM halted in time, however long settling it takes", async () => {
    await create("work");
    await core.features.set("work", "sim-shutdown-ms", "20", ctx);
    await core.starting.start("work", ctx);
    slowSettle.ms = 300;
    const asked = Date.now();
    await expect(core.stopping.shutdown("work", { force: false, wait: true, timeoutMs: 150 }, ctx)).resolves.toBe("Halted");
    // It was answered once settled, not when it halted.
    expect(Date.now() - asked).toBeGreaterThanOrEqual(300);
    expect(log.at(-1)).toBe("network afterHalt work (shutdown)");
  });

  it("settle a halted VM as far as they can: one that fails is logged, and those after it still run", async () => {
    await core.creation.create({ name: "tpl", klass: "TemplateVM", label: "black", template: "", properties: {}, pool: "", volumePools: {} }, ctx);
    await core.creation.create(
      { name: "dvm", klass: "AppVM", label: "red", template: "tpl", properties: { template_for_dispvms: true }, pool: "", volumePools: {} },
      ctx,
    );
    const disp = await core.creation.createDisposable({ template: "dvm", label: "", idempotencyKey: "" }, ctx);
    failing.add("afterHalt");
    await core.starting.start(disp.name, ctx);
    await core.stopping.kill(disp.name, ctx);
    expect(log.filter((line) => line.includes("afterHalt"))).toEqual([`storage afterHalt ${disp.name} (killed)`, `network afterHalt ${disp.name} (killed)`]);
    expect(built.logs.lines).toContainEqual(expect.objectContaining({ participant: "network", msg: "a participant failed to settle a halted VM" }));
    // The disposables come last, and still removed it.
    expect(() => core.readModel.get(disp.name)).toThrow(expect.objectContaining({ reason: "VM_NOT_FOUND" }));
  });
});
