import * as grpc from "@grpc/grpc-js";
import { PowerState, VmClass } from "../../gen/steward/v1/vm_pb";
import { rpcError } from "../fixtures/expect-rpc-error";
import { serverForSuite } from "../fixtures/server-with-clients";

/** A client that stops waiting stops the wait, not the work. */
describe("a call the client gives up on", () => {
  const suite = serverForSuite();

  it("ShutdownVm with wait stops waiting at the client's deadline; the shutdown goes on, and the log says so", async () => {
    const { vms, server } = suite;
    await vms.createVm({ name: "slow-off", klass: VmClass.STANDALONE_VM, label: "red" });
    await vms.setFeature({ vm: "slow-off", name: "sim-shutdown-ms", value: "600" });
    await vms.startVm({ vm: "slow-off" });

    const asked = Date.now();
    const gaveUp = await rpcError(vms.shutdownVm({ vm: "slow-off", wait: true }, { timeoutMs: 150, metadata: { "x-request-id": "impatient-1" } }));
    expect(gaveUp.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(Date.now() - asked).toBeLessThan(500);
    expect((await vms.getVm({ vm: "slow-off" })).vm!.state).toBe(PowerState.HALTING);

    const logged = await server.logs.waitFor((line) => line.requestId === "impatient-1" && line.vm === "slow-off");
    expect(logged.msg).toMatch(/stopped waiting for slow-off to shut down; it goes on/);

    for (let i = 0; i < 200 && (await vms.getVm({ vm: "slow-off" })).vm!.state !== PowerState.HALTED; i++) await new Promise((r) => setTimeout(r, 10));
    expect((await vms.getVm({ vm: "slow-off" })).vm!.state).toBe(PowerState.HALTED);
  });

  it("an operation waiting for its turn on a VM leaves the queue when its client cancels", async () => {
    const { vms } = suite;
    await vms.createVm({ name: "busy", klass: VmClass.STANDALONE_VM, label: "red" });
    await vms.setFeature({ vm: "busy", name: "sim-start-ms", value: "400" });
    const starting = vms.startVm({ vm: "busy" });
    await new Promise((r) => setTimeout(r, 50));
    // The start holds the VM; this tag change waits behind it, until its deadline.
    const waited = await rpcError(vms.addTag({ vm: "busy", tag: "late" }, { timeoutMs: 100 }));
    expect(waited.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect((await starting).state).toBe(PowerState.RUNNING);
    expect((await vms.listTags({ vm: "busy" })).tags).not.toContain("late");
    await vms.killVm({ vm: "busy" });
  });
});
