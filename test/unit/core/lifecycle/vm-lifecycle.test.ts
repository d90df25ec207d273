import type { Core } from "../../../../src/app/build-core";
import { testContext } from "../../../fixtures/call-context";
import { coreForEach } from "../../../fixtures/test-core";

const ctx = testContext();
const standalone = { klass: "StandaloneVM" as const, label: "red", template: "", pool: "", volumePools: {} };

describe("starting a VM's netvm chain", () => {
  const built = coreForEach();
  let core: Core;
  beforeEach(async () => {
    core = built.current;
    await core.creation.create({ ...standalone, name: "sys-net", properties: { provides_network: true } }, ctx);
    await core.creation.create({ ...standalone, name: "sys-fw", properties: { provides_network: true, netvm: "sys-net" } }, ctx);
  });

  it("starts the farthest netvm first", async () => {
    await core.creation.create({ ...standalone, name: "work", properties: { netvm: "sys-fw" } }, ctx);
    await core.starting.start("work", ctx);
    const started = core.store.events.after(0, 1000).filter((e) => e.name === "domain-start").map((e) => e.subject);
    expect(started).toEqual(["sys-net", "sys-fw", "work"]);
  });

  it("lets two VMs that share a netvm start side by side: the second finds it running", async () => {
    await core.features.set("sys-net", "sim-start-ms", "40", ctx);
    await core.creation.create({ ...standalone, name: "one", properties: { netvm: "sys-net" } }, ctx);
    await core.creation.create({ ...standalone, name: "two", properties: { netvm: "sys-net" } }, ctx);
    await expect(Promise.all([core.starting.start("one", ctx), core.starting.start("two", ctx)])).resolves.toEqual(["Running", "Running"]);
  });

  it("refuses a chain that comes back on itself, before anything starts, rather than recurse", async () => {
    // A loop in the stored state, which no request can make any more (a state from before that rule):
    // sys-net's netvm is the default, and the default is sys-fw.
    core.store.transaction(() => core.store.globals.set("default_netvm", String(core.lookup.resolve("sys-fw").qid)));
    await expect(core.starting.start("sys-net", ctx)).rejects.toMatchObject({ reason: "NETVM_LOOP" });
    expect(core.readModel.get("sys-fw").state).toBe("Halted");
    expect(core.readModel.get("sys-net").state).toBe("Halted");
  });
});

describe("starts and stops that meet", () => {
  const built = coreForEach();
  let core: Core;
  beforeEach(() => (core = built.current));
  const network = { provides_network: true };

  it("refuse one of two starts whose chains came to wait for each other, rather than hang", async () => {
    // B's chain is M, A, X when it starts; meanwhile the settings change so that A's chain goes
    // through B: each start holds its VM and would wait for the other's.
    await core.creation.create({ ...standalone, name: "x", properties: network }, ctx);
    await core.features.set("x", "sim-start-ms", "150", ctx);
    await core.creation.create({ ...standalone, name: "a", properties: { ...network, netvm: "x" } }, ctx);
    await core.creation.create({ ...standalone, name: "m", properties: { ...network, netvm: "a" } }, ctx);
    await core.creation.create({ ...standalone, name: "b", properties: { ...network, netvm: "m" } }, ctx);
    const startB = core.starting.start("b", ctx).then(
      () => "ok",
      (error: { reason?: string }) => error.reason,
    );
    await new Promise((resolve) => setTimeout(resolve, 30));
    await core.properties.set("m", "netvm", null, ctx);
    await core.properties.set("a", "netvm", "b", ctx);
    const startA = core.starting.start("a", ctx).then(
      () => "ok",
      (error: { reason?: string }) => error.reason,
    );
    expect(await Promise.all([startB, startA])).toEqual(["OPERATIONS_WOULD_DEADLOCK", "ok"]);
    expect(core.readModel.get("a").state).toBe("Running");
  });

  it("refuses a chain longer than a start follows", async () => {
    await core.creation.create({ ...standalone, name: "net0", properties: network }, ctx);
    for (let i = 1; i <= 65; i++) await core.creation.create({ ...standalone, name: `net${i}`, properties: { ...network, netvm: `net${i - 1}` } }, ctx);
    await expect(core.starting.start("net65", ctx)).rejects.toMatchObject({ reason: "NETVM_CHAIN_TOO_LONG" });
    expect(core.readModel.get("net0").state).toBe("Halted");
  });

  it("shuts a VM down once asked, even when its caller stops waiting for its turn", async () => {
    await core.creation.create({ ...standalone, name: "work", properties: {} }, ctx);
    await core.starting.start("work", ctx);
    let release!: () => void;
    const held = core.vmOperations.on("work", "vm", ctx, "hold it", () => new Promise<void>((resolve) => (release = resolve)));
    const caller = new AbortController();
    const shutdown = core.stopping.shutdown("work", { force: false, wait: false, timeoutMs: undefined }, testContext(caller.signal));
    caller.abort();
    release();
    await held;
    await shutdown;
    expect(["Halting", "Halted"]).toContain(core.readModel.get("work").state);
  });

  it("refuses a forced shutdown whose users come back to it, rather than recurse", async () => {
    await core.creation.create({ ...standalone, name: "sys-net", properties: network }, ctx);
    await core.creation.create({ ...standalone, name: "sys-fw", properties: { ...network, netvm: "sys-net" } }, ctx);
    await core.starting.start("sys-fw", ctx);
    // sys-net's netvm is the default, and the default is sys-fw (a stored state no request can
    // make any more): each is the other's user.
    core.store.transaction(() => core.store.globals.set("default_netvm", String(core.lookup.resolve("sys-fw").qid)));
    await expect(core.stopping.shutdown("sys-net", { force: true, wait: true, timeoutMs: 1000 }, ctx)).rejects.toMatchObject({ reason: "NETVM_LOOP" });
  });
});

describe("starting a DispVM", () => {
  const built = coreForEach();

  it("is refused when its AppVM no longer serves DispVMs (a state no request makes any more)", async () => {
    const core = built.current;
    await core.creation.create({ ...standalone, name: "tpl", klass: "TemplateVM", properties: {} }, ctx);
    await core.creation.create({ ...standalone, name: "base", klass: "AppVM", template: "tpl", properties: { template_for_dispvms: true } }, ctx);
    const disp = await core.creation.createDisposable({ template: "base", label: "", idempotencyKey: "" }, ctx);
    const base = core.lookup.resolve("base");
    core.store.transaction(() => core.store.vms.setProperty(base.qid, "template_for_dispvms", "0"));
    await expect(core.starting.start(disp.name, ctx)).rejects.toMatchObject({ reason: "NOT_A_DISPVM_TEMPLATE" });
    expect(core.readModel.get(disp.name).state).toBe("Halted");
  });
});
