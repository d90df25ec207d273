import { SimHost, SimHypervisor } from "../../src/adapters/hypervisor/sim/sim-hypervisor";
import { killAll, simPlan } from "../fixtures/sim-guests";
import { hypervisorContract } from "./hypervisor.contract";

hypervisorContract("simulator", async () => {
  const host = new SimHost();
  return {
    hypervisor: new SimHypervisor(host),
    restarted: async () => new SimHypervisor(host),
    plan: (name, { shutdownMs, bootMs } = {}) =>
      simPlan(name, {
        "sim-shutdown-ms": shutdownMs === undefined ? "never" : String(shutdownMs),
        ...(bootMs === undefined ? {} : { "sim-start-ms": String(bootMs) }),
      }),
    cleanup: () => killAll(host),
  };
});
