import * as grpc from "@grpc/grpc-js";
import { PowerState, VmClass } from "../../gen/steward/v1/vm_pb";
import { VmService } from "../../gen/steward/v1/vm_service_pb";
import { createClient, type StewardClient } from "../../src/client/steward-client";
import { rpcError } from "../fixtures/expect-rpc-error";
import { stopAndReadEvents } from "../fixtures/stored-events";
import { bool, vmRef } from "../fixtures/property-values";
import { serverForSuite, type ServerWithClients } from "../fixtures/server-with-clients";
import { startTestServer } from "../fixtures/test-server";

const state = async (vms: StewardClient<typeof VmService>, vm: string) => (await vms.getVm({ vm })).vm!.state;

describe("the lifecycle, on the simulated hypervisor", () => {
  const suite = serverForSuite();
  let vms: ServerWithClients["vms"];
  beforeAll(async () => {
    vms = suite.vms;
    await vms.createVm({ name: "tpl", klass: VmClass.TEMPLATE_VM, label: "black" });
    await vms.createVm({ name: "sys-net", klass: VmClass.STANDALONE_VM, label: "red", properties: { provides_network: bool(true) } });
    await vms.createVm({ name: "sys-fw", klass: VmClass.APP_VM, label: "green", template: "tpl", properties: { provides_network: bool(true), netvm: vmRef("sys-net") } });
    await vms.createVm({ name: "work", klass: VmClass.APP_VM, label: "blue", template: "tpl", properties: { netvm: vmRef("sys-fw") } });
  });

  it("starts a VM after its netvm chain, and reports it running since then", async () => {
    expect((await vms.startVm({ vm: "work" })).state).toBe(PowerState.RUNNING);
    expect(await state(vms, "sys-fw")).toBe(PowerState.RUNNING);
    expect(await state(vms, "sys-net")).toBe(PowerState.RUNNING);
    const { vm } = await vms.getVm({ vm: "work" });
    expect(Number(vm!.runtime!.startTime!.seconds)).toBeGreaterThan(Date.now() / 1000 - 60);
    const startTime = vm!.properties.find((p) => p.name === "start_time")!.value!.kind.value as string;
    expect(new Date(startTime).getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect((await rpcError(vms.startVm({ vm: "work" })))).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, info: expect.objectContaining({ reason: "VM_BAD_STATE", metadata: { vm: "work", state: "Running" } }) });
  });

  it("refuses what a running VM cannot do: remove, rename, change its template", async () => {
    expect((await rpcError(vms.removeVm({ vm: "work" }))).info?.reason).toBe("VM_NOT_HALTED");
    expect((await rpcError(vms.renameVm({ vm: "work", newName: "job" }))).info?.reason).toBe("VM_NOT_HALTED");
    expect((await rpcError(vms.setProperty({ vm: "work", name: "template", value: vmRef("tpl") }))).info?.reason).toBe("VM_NOT_HALTED");
  });

  it("pauses, unpauses, suspends and resumes, each only from the right state", async () => {
    expect((await vms.pauseVm({ vm: "work" })).state).toBe(PowerState.PAUSED);
    expect((await rpcError(vms.pauseVm({ vm: "work" }))).info?.metadata.state).toBe("Paused");
    expect((await rpcError(vms.suspendVm({ vm: "work" }))).info?.reason).toBe("VM_BAD_STATE");
    expect((await vms.unpauseVm({ vm: "work" })).state).toBe(PowerState.RUNNING);
    expect((await vms.suspendVm({ vm: "work" })).state).toBe(PowerState.SUSPENDED);
    expect((await rpcError(vms.unpauseVm({ vm: "work" }))).info?.reason).toBe("VM_BAD_STATE");
    expect((await vms.resumeVm({ vm: "work" })).state).toBe(PowerState.RUNNING);
  });

  it("will not shut down a netvm that running VMs use, unless forced, which shuts them down too", async () => {
    const refused = await rpcError(vms.shutdownVm({ vm: "sys-fw", wait: true }));
    expect(refused.info).toMatchObject({ reason: "VM_IN_USE", metadata: { used_by: "work" } });
    expect((await vms.shutdownVm({ vm: "sys-fw", wait: true, force: true })).state).toBe(PowerState.HALTED);
    expect(await state(vms, "work")).toBe(PowerState.HALTED);
    expect(await state(vms, "sys-net")).toBe(PowerState.RUNNING);
  });

  it("shuts down without waiting (Halting), then halts", async () => {
    const { state: after } = await vms.shutdownVm({ vm: "sys-net" });
    expect([PowerState.HALTING, PowerState.HALTED]).toContain(after);
    for (let i = 0; i < 100 && (await state(vms, "sys-net")) !== PowerState.HALTED; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await state(vms, "sys-net")).toBe(PowerState.HALTED);
    expect((await rpcError(vms.shutdownVm({ vm: "sys-net" }))).info?.reason).toBe("VM_BAD_STATE");
  });

  it("on a guest that ignores shutdown: FAILED_PRECONDITION and still running, or killed with force", async () => {
    await vms.createVm({ name: "stubborn", klass: VmClass.STANDALONE_VM, label: "red" });
    await vms.setFeature({ vm: "stubborn", name: "sim-shutdown-ms", value: "never" });
    await vms.startVm({ vm: "stubborn" });
    const timedOut = await rpcError(vms.shutdownVm({ vm: "stubborn", wait: true, timeout: { seconds: 0n, nanos: 200_000_000 } }));
    expect(timedOut.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(timedOut.info?.reason).toBe("SHUTDOWN_TIMEOUT");
    expect(await state(vms, "stubborn")).toBe(PowerState.HALTING);
    const forced = await vms.shutdownVm({ vm: "stubborn", wait: true, force: true, timeout: { seconds: 0n, nanos: 200_000_000 } });
    expect(forced.state).toBe(PowerState.HALTED);
  });

  it("with force, kills a guest that ignores shutdown after the timeout, whether or not the caller waits", async () => {
    const untilHalted = async (vm: string) => {
      for (let i = 0; i < 300 && (await state(vms, vm)) !== PowerState.HALTED; i++) await new Promise((r) => setTimeout(r, 10));
      return state(vms, vm);
    };
    await vms.createVm({ name: "stubborn-nowait", klass: VmClass.STANDALONE_VM, label: "red" });
    await vms.setFeature({ vm: "stubborn-nowait", name: "sim-shutdown-ms", value: "never" });
    await vms.startVm({ vm: "stubborn-nowait" });
    const asked = await vms.shutdownVm({ vm: "stubborn-nowait", force: true, timeout: { seconds: 0n, nanos: 200_000_000 } });
    expect(asked.state).toBe(PowerState.HALTING);
    expect(await untilHalted("stubborn-nowait")).toBe(PowerState.HALTED);

    // A caller that gives up before the timeout does not call the kill off.
    await vms.startVm({ vm: "stubborn-nowait" });
    const gaveUp = await rpcError(vms.shutdownVm({ vm: "stubborn-nowait", force: true, wait: true, timeout: { seconds: 0n, nanos: 300_000_000 } }, { timeoutMs: 100 }));
    expect(gaveUp.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(await state(vms, "stubborn-nowait")).toBe(PowerState.HALTING);
    expect(await untilHalted("stubborn-nowait")).toBe(PowerState.HALTED);
  });

  it("kills a running VM at once, and never dom0", async () => {
    await vms.createVm({ name: "victim", klass: VmClass.STANDALONE_VM, label: "red" });
    await vms.startVm({ vm: "victim" });
    expect((await vms.killVm({ vm: "victim" })).state).toBe(PowerState.HALTED);
    expect((await rpcError(vms.killVm({ vm: "victim" }))).info?.reason).toBe("VM_BAD_STATE");
    for (const call of [vms.killVm({ vm: "dom0" }), vms.startVm({ vm: "dom0" }), vms.shutdownVm({ vm: "dom0" })]) {
      expect((await rpcError(call)).info?.reason).toBe("VM_IS_ADMIN");
    }
  });

  it("reports a failed start as FAILED_PRECONDITION, not UNAVAILABLE, and leaves the VM halted", async () => {
    await vms.createVm({ name: "broken", klass: VmClass.STANDALONE_VM, label: "red" });
    await vms.setFeature({ vm: "broken", name: "sim-start-fails", value: "1" });
    const failed = await rpcError(vms.startVm({ vm: "broken" }));
    expect(failed.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(failed.info?.reason).toBe("START_FAILED");
    expect(await state(vms, "broken")).toBe(PowerState.HALTED);
  });
});

describe("lifecycle events", () => {
  it("tell each step in Qubes' names", async () => {
    const server = await startTestServer();
    const vms = createClient(VmService, server.tcp);
    await vms.createVm({ name: "ev", klass: VmClass.STANDALONE_VM, label: "red" });
    await vms.startVm({ vm: "ev" });
    await vms.pauseVm({ vm: "ev" });
    await vms.unpauseVm({ vm: "ev" });
    await vms.shutdownVm({ vm: "ev", wait: true });
    await vms.setFeature({ vm: "ev", name: "sim-start-fails", value: "1" });
    await rpcError(vms.startVm({ vm: "ev" }));
    vms.close();
    const names = (await stopAndReadEvents(server)).filter((e) => e.subject === "ev" && !e.name.includes("tag") && !e.name.includes("feature") && !e.name.startsWith("operation-")).map((e) => e.name);
    expect(names).toEqual([
      "domain-add",
      "domain-pre-start",
      "domain-start",
      "domain-paused",
      "domain-unpaused",
      "domain-pre-shutdown",
      "domain-shutdown",
      // The halt settles the StandaloneVM's volumes: root and private each keep a revision.
      "volume-snapshot",
      "volume-snapshot",
      "domain-pre-start",
      "domain-start-failed",
    ]);
  });

  it("tell in domain-shutdown how the VM halted: the guest powered off, or Steward killed it", async () => {
    const server = await startTestServer();
    const vms = createClient(VmService, server.tcp);
    await vms.createVm({ name: "ev", klass: VmClass.STANDALONE_VM, label: "red" });
    await vms.startVm({ vm: "ev" });
    await vms.shutdownVm({ vm: "ev", wait: true });
    await vms.startVm({ vm: "ev" });
    await vms.killVm({ vm: "ev" });
    vms.close();
    const halts = (await stopAndReadEvents(server)).filter((e) => e.subject === "ev" && e.name === "domain-shutdown").map((e) => e.kwargs);
    expect(halts).toEqual([
      { cause: "shutdown", detail: "the guest powered off" },
      { cause: "killed", detail: "killed" },
    ]);
  });

  it("tell a VM killed while it starts as shut down and its start as failed, never as started", async () => {
    const server = await startTestServer();
    const vms = createClient(VmService, server.tcp);
    await vms.createVm({ name: "slow", klass: VmClass.STANDALONE_VM, label: "red" });
    await vms.setFeature({ vm: "slow", name: "sim-start-ms", value: "300" });
    const starting = rpcError(vms.startVm({ vm: "slow" }));
    while ((await state(vms, "slow")) !== PowerState.TRANSIENT) await new Promise((resolve) => setTimeout(resolve, 5));
    expect((await vms.killVm({ vm: "slow" })).state).toBe(PowerState.HALTED);
    const aborted = await starting;
    expect([aborted.code, aborted.info?.reason]).toEqual([grpc.status.ABORTED, "START_ABORTED"]);
    expect(await state(vms, "slow")).toBe(PowerState.HALTED);
    vms.close();
    const names = (await stopAndReadEvents(server)).filter((e) => e.subject === "slow" && e.name.startsWith("domain-") && !e.name.includes("tag") && !e.name.includes("feature")).map((e) => e.name);
    expect(names).toEqual(["domain-add", "domain-pre-start", "domain-shutdown", "domain-start-failed"]);
  });
});

describe("starting VMs that share a netvm", () => {
  const suite = serverForSuite();

  it("waits for a netvm that is still starting, and starts many VMs behind it at once", async () => {
    const { vms } = suite;
    await vms.createVm({ name: "slow-net", klass: VmClass.STANDALONE_VM, label: "red", properties: { provides_network: bool(true) } });
    await vms.setFeature({ vm: "slow-net", name: "sim-start-ms", value: "300" });
    const names = ["one", "two", "three", "four", "five"];
    for (const name of names) await vms.createVm({ name, klass: VmClass.STANDALONE_VM, label: "blue", properties: { netvm: vmRef("slow-net") } });
    const netvm = vms.startVm({ vm: "slow-net" });
    while ((await state(vms, "slow-net")) !== PowerState.TRANSIENT) await new Promise((resolve) => setTimeout(resolve, 5));
    // The netvm is still starting: each of these waits for it, instead of failing NETVM_NOT_RUNNING.
    const started = await Promise.all(names.map((vm) => vms.startVm({ vm })));
    expect(started.map((answer) => answer.state)).toEqual(names.map(() => PowerState.RUNNING));
    expect((await netvm).state).toBe(PowerState.RUNNING);
  });

  it("waits for a starting netvm only until the call's deadline, and the starts go on", async () => {
    const { vms } = suite;
    await vms.createVm({ name: "slower-net", klass: VmClass.STANDALONE_VM, label: "red", properties: { provides_network: bool(true) } });
    await vms.setFeature({ vm: "slower-net", name: "sim-start-ms", value: "600" });
    await vms.createVm({ name: "behind-slower", klass: VmClass.STANDALONE_VM, label: "blue", properties: { netvm: vmRef("slower-net") } });
    const netvm = vms.startVm({ vm: "slower-net" });
    while ((await state(vms, "slower-net")) !== PowerState.TRANSIENT) await new Promise((resolve) => setTimeout(resolve, 5));
    const asked = Date.now();
    const gaveUp = await rpcError(vms.startVm({ vm: "behind-slower" }, { timeoutMs: 150 }));
    expect(gaveUp.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(Date.now() - asked).toBeLessThan(500);
    expect((await netvm).state).toBe(PowerState.RUNNING);
    expect(await state(vms, "behind-slower")).toBe(PowerState.HALTED);
  });
});
