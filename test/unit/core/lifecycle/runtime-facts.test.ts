import { testContext } from "../../../fixtures/call-context";
import { tapPerVm } from "../../../fixtures/participants";
import { coreForEach } from "../../../fixtures/test-core";
import { SimHypervisor } from "../../../../src/adapters/hypervisor/sim/sim-hypervisor";

describe("a running VM's runtime facts", () => {
  const core = coreForEach(() => new SimHypervisor(), () => [tapPerVm("00:16:3e:5e:6c:07", "10.137.0.7")]);

  it("hold the host-side interfaces its plan gave the hypervisor, its pid and start time, until it halts", async () => {
    const ctx = testContext();
    const vm = await core.current.creation.create({ name: "work", klass: "StandaloneVM", label: "red", template: "", properties: {}, pool: "", volumePools: {}, uuid: "" }, ctx);
    const before = Date.now();
    await core.current.starting.start("work", ctx);
    const runtime = core.current.readModel.get("work").runtime!;
    expect(runtime.interfaces).toEqual([{ name: `vif${vm.qid}.0`, mac: "00:16:3e:5e:6c:07" }]);
    expect(runtime.pid).toBe(process.pid);
    expect(runtime.vsockCid).toBe(0);
    expect(runtime.startedAt.getTime()).toBeGreaterThanOrEqual(before - 1000);
    // No netvm: no address, whatever the plan says.
    expect({ ip: runtime.ip, ip6: runtime.ip6 }).toEqual({ ip: "", ip6: "" });
    await core.current.stopping.kill("work", ctx);
    expect(core.current.readModel.get("work").runtime).toBeUndefined();
  });
});
