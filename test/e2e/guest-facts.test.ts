import * as grpc from "@grpc/grpc-js";
import { PowerState, VmClass } from "../../gen/steward/v1/vm_pb";
import { rpcError } from "../fixtures/expect-rpc-error";
import { serverForSuite } from "../fixtures/server-with-clients";

describe("guest facts on the simulated hypervisor, whose guests run no agent", () => {
  const suite = serverForSuite();
  beforeAll(async () => {
    await suite.vms.createVm({ name: "work", klass: VmClass.STANDALONE_VM, label: "red" });
  });

  it("refuses a start that waits for the guest, and leaves the VM halted", async () => {
    const refused = await rpcError(suite.vms.startVm({ vm: "work", waitForGuest: true }));
    expect(refused).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, info: expect.objectContaining({ reason: "GUEST_AGENT_ABSENT" }) });
    expect((await suite.vms.getVm({ vm: "work" })).vm!.state).toBe(PowerState.HALTED);
  });

  it("says GUEST_AGENT_ABSENT for addresses and OS release of a running VM, VM_BAD_STATE of a halted one, VM_NOT_FOUND of none", async () => {
    expect((await rpcError(suite.vms.getVmAddresses({ vm: "work" }))).info?.reason).toBe("VM_BAD_STATE");
    await suite.vms.startVm({ vm: "work" });
    expect((await rpcError(suite.vms.getVmAddresses({ vm: "work" }))).info?.reason).toBe("GUEST_AGENT_ABSENT");
    expect((await rpcError(suite.vms.getVmOsRelease({ vm: "work" }))).info?.reason).toBe("GUEST_AGENT_ABSENT");
    expect((await rpcError(suite.vms.getVmOsRelease({ vm: "nosuch" }))).code).toBe(grpc.status.NOT_FOUND);
    // The AdminVM runs, but as the host itself: it has no agent, and says why.
    const host = await rpcError(suite.vms.getVmAddresses({ vm: "dom0" }));
    expect(host).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, info: expect.objectContaining({ reason: "CAPABILITY_MISSING" }) });
    expect(host.details).toMatch(/dom0 is the AdminVM/);
  });
});
