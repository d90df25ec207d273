import type { Core } from "../../../../src/app/build-core";
import { testContext } from "../../../fixtures/call-context";
import { coreForEach } from "../../../fixtures/test-core";

const ctx = testContext();
const standalone = { klass: "StandaloneVM" as const, label: "red", template: "", pool: "", volumePools: {}, idempotencyKey: "" };

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
    // A loop no single setting makes: sys-net's netvm is the default, and the default becomes sys-fw.
    core.globals.set("default_netvm", "sys-fw", ctx);
    await expect(core.starting.start("sys-net", ctx)).rejects.toMatchObject({ reason: "NETVM_LOOP" });
    expect(core.readModel.get("sys-fw").state).toBe("Halted");
    expect(core.readModel.get("sys-net").state).toBe("Halted");
  });
});
