import type { Core } from "../../../../../src/app/build-core";
import { testContext } from "../../../../fixtures/call-context";
import { coreForEach } from "../../../../fixtures/test-core";

/** The full view's stable part is the same object while it holds, and a new one once it does not. */
describe("stable VM views", () => {
  const built = coreForEach();
  let core: Core;
  const ctx = testContext();
  beforeEach(async () => {
    core = built.current;
    const base = { label: "red", properties: {}, pool: "", volumePools: {} };
    await core.creation.create({ ...base, name: "tpl", klass: "TemplateVM", template: "" }, ctx);
    await core.creation.create({ ...base, name: "work", klass: "AppVM", template: "tpl" }, ctx);
    await core.creation.create({ ...base, name: "other", klass: "StandaloneVM", template: "" }, ctx);
  });

  const stableOf = (name: string) => {
    const vm = core.readModel.get(name);
    void vm.properties; // read, as an encoder does the first time
    return vm.stable!;
  };

  it("is the same object while nothing it was derived from changed, whatever else did", async () => {
    const first = stableOf("work");
    expect(stableOf("work")).toBe(first);
    await core.properties.set("other", "memory", 999, ctx);
    expect(stableOf("work")).toBe(first);
  });

  it.each<[string, () => unknown]>([
    ["its own property", () => core.properties.set("work", "memory", 999, ctx)],
    ["its template's property", () => core.properties.set("tpl", "vcpus", 4, ctx)],
    ["a global property", () => core.globals.set("default_kernel", "6.1", ctx)],
  ])("is replaced when %s changes, keeping its VM's lineage", async (_, change) => {
    const first = stableOf("work");
    await change();
    const next = stableOf("work");
    expect(next).not.toBe(first);
    expect(next.lineage).toBe(first.lineage);
  });
});
