/**
 * Re-adoption, as libvirtd does it: the server is SIGKILLed while real guests run under QEMU,
 * and started again on the same data folder. The guests keep running throughout (the same
 * guest answers, with what it held in memory, and its console shows no boot); a guest whose
 * QEMU died meanwhile is halted, with its event. The test ends every QEMU it started, by pid.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { EventService } from "../../gen/steward/v1/event_service_pb";
import { PowerState, VmClass } from "../../gen/steward/v1/vm_pb";
import { VmService } from "../../gen/steward/v1/vm_service_pb";
import { createClient } from "../../src/client/steward-client";
import { ChildServer } from "../fixtures/child-server";
import { ConsoleClient } from "../fixtures/console-client";
import { int, str } from "../fixtures/property-values";
import { installTestGuest, killQemusOf, TEST_GUEST_KERNEL } from "../fixtures/qemu-guests";
import { makeTempDir, removeDir } from "../fixtures/temp-dir";

jest.setTimeout(240_000);

describe("re-adoption of running guests after the server is SIGKILLed", () => {
  let dir: string;
  const servers: ChildServer[] = [];
  beforeEach(() => {
    dir = makeTempDir("stra-");
    installTestGuest(path.join(dir, "kernels"));
  });
  afterEach(async () => {
    for (const server of servers.splice(0)) {
      server.signal("SIGKILL");
      await server.exited;
    }
    await killQemusOf(path.join(dir, "qemu"));
    removeDir(dir);
  });

  async function serve(): Promise<{ vms: ReturnType<typeof createClient<typeof VmService>>; events: ReturnType<typeof createClient<typeof EventService>> }> {
    const server = new ChildServer(["--data-dir", dir, "--listen", "127.0.0.1:0", "--hypervisor", "qemu"]);
    servers.push(server);
    const [tcp] = (await server.listening(60_000)) as [string];
    return { vms: createClient(VmService, tcp), events: createClient(EventService, tcp) };
  }

  it("finds the guests running, with their start times, reconnects to them, and settles the one whose QEMU died", async () => {
    const first = await serve();
    const guest = { kernel: str(TEST_GUEST_KERNEL), kernelopts: str("quiet"), memory: int(256), maxmem: int(0), vcpus: int(1) };
    await first.vms.createVm({ name: "tpl", klass: VmClass.TEMPLATE_VM, label: "black", properties: guest });
    for (const name of ["running", "paused", "dies"]) await first.vms.createVm({ name, klass: VmClass.APP_VM, label: "blue", template: "tpl" });
    await Promise.all(["running", "paused", "dies"].map((vm) => first.vms.startVm({ vm, waitForGuest: true })));
    const before = new Map<string, { pid: number; start: bigint }>();
    for (const vm of ["running", "paused", "dies"]) {
      const { runtime } = (await first.vms.getVm({ vm })).vm!;
      before.set(vm, { pid: runtime!.pid, start: runtime!.startTime!.seconds * 1000n + BigInt(Math.floor(runtime!.startTime!.nanos / 1e6)) });
    }
    // Something only this run of the guest holds: a file in its memory.
    const console = new ConsoleClient(first.vms, "running");
    console.type("run echo still-the-same-guest > /run/stamp\n");
    await console.waitFor(/done run/);
    console.cancel();
    await first.vms.pauseVm({ vm: "paused" });

    servers[0].signal("SIGKILL");
    await servers[0].exited;
    first.vms.close();
    first.events.close();
    // While no server runs, one QEMU dies.
    process.kill(before.get("dies")!.pid, "SIGKILL");

    const second = await serve();
    const running = (await second.vms.getVm({ vm: "running" })).vm!;
    expect(running.state).toBe(PowerState.RUNNING);
    expect(running.runtime!.pid).toBe(before.get("running")!.pid);
    const start = running.runtime!.startTime!;
    expect(Math.abs(Number(start.seconds * 1000n + BigInt(Math.floor(start.nanos / 1e6)) - before.get("running")!.start))).toBeLessThan(1000);
    expect((await second.vms.getVm({ vm: "paused" })).vm!.state).toBe(PowerState.PAUSED);
    expect((await second.vms.getVm({ vm: "dies" })).vm!.state).toBe(PowerState.HALTED);

    // The same guest answers its console, holding what it held, and did not boot again.
    const again = new ConsoleClient(second.vms, "running");
    again.type("run cat /run/stamp\n");
    await again.waitFor(/still-the-same-guest/);
    expect(again.output).not.toMatch(/steward-test-guest: up/);
    again.cancel();
    // Its stats name its volumes as at its launch, and count what the guest read before the restart.
    const stats = (await second.vms.getVmStats({ vm: "running" })).stats!;
    expect(stats.volumes.map((volume) => volume.volume)).toEqual(["root", "private", "volatile"]);
    expect(stats.volumes[0].readOps).toBeGreaterThan(0n);

    // The adopted guests are driven as before; the one that died was told as halted.
    expect((await second.vms.unpauseVm({ vm: "paused" })).state).toBe(PowerState.RUNNING);
    const shutdowns: string[] = [];
    for await (const message of second.events.events({ afterSequence: 0n, namePrefixes: ["domain-shutdown"] }, { timeoutMs: 10_000 })) {
      // The stream opens with connection-established.
      if (message.kind.case === "event" && message.kind.value.name === "domain-shutdown") shutdowns.push(`${message.kind.value.subject} ${message.kind.value.kwargs.cause}`);
      if (shutdowns.length > 0) break;
    }
    expect(shutdowns).toEqual(["dies crashed"]);
    expect((await second.vms.killVm({ vm: "running" })).state).toBe(PowerState.HALTED);
    // The killed VM's folder is gone; the others' are there.
    expect(fs.readdirSync(path.join(dir, "qemu"))).toHaveLength(1);
    second.vms.close();
    second.events.close();
  });
});
