import { SimHypervisor } from "../../../src/adapters/hypervisor/sim/sim-hypervisor";
import { GlobalProperties } from "../../../src/core/properties/global-properties";
import { PropertyResolver } from "../../../src/core/properties/property-resolver";
import { VmProperties } from "../../../src/core/properties/vm-properties";
import { Labels } from "../../../src/core/labels";
import { VmLookup } from "../../../src/core/vm-lookup";
import { VmRegistry } from "../../../src/core/vm-registry";
import { systemClock } from "../../../src/ports/clock";
import { storeForEach } from "../../fixtures/temp-store";

/** The full view's stable part is the same object while it holds, and a new one once it does not. */
describe("stable VM views", () => {
  const opened = storeForEach();
  let vms: VmRegistry;
  let properties: VmProperties;
  let globals: GlobalProperties;
  beforeEach(() => {
    const store = opened.current;
    const hypervisor = new SimHypervisor();
    const lookup = new VmLookup(store);
    const resolver = new PropertyResolver(store, hypervisor);
    properties = new VmProperties(store, lookup, resolver, hypervisor, systemClock);
    globals = new GlobalProperties(store, resolver, systemClock);
    vms = new VmRegistry(store, lookup, hypervisor, new Labels(store, systemClock), properties, resolver, systemClock);
    const base = { label: "red", properties: {}, pool: "", volumePools: {}, requestId: "" };
    vms.create({ ...base, name: "tpl", klass: "TemplateVM", template: "" }, "dom0");
    vms.create({ ...base, name: "work", klass: "AppVM", template: "tpl" }, "dom0");
    vms.create({ ...base, name: "other", klass: "StandaloneVM", template: "" }, "dom0");
  });

  const stableOf = (name: string) => {
    const vm = vms.get(name);
    void vm.properties; // read, as an encoder does the first time
    return vm.stable!;
  };

  it("is the same object while nothing it was derived from changed, whatever else did", () => {
    const first = stableOf("work");
    expect(stableOf("work")).toBe(first);
    properties.set("other", "memory", 999);
    expect(stableOf("work")).toBe(first);
  });

  it.each<[string, () => unknown]>([
    ["its own property", () => properties.set("work", "memory", 999)],
    ["its template's property", () => properties.set("tpl", "vcpus", 4)],
    ["a global property", () => globals.set("default_kernel", "6.1")],
  ])("is replaced when %s changes, keeping its VM's lineage", (_, change) => {
    const first = stableOf("work");
    change();
    const next = stableOf("work");
    expect(next).not.toBe(first);
    expect(next.lineage).toBe(first.lineage);
  });
});
