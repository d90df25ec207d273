/**
 * Real guests through the gRPC API: the test guest (scripts/build-test-guest) booted by QEMU,
 * under KVM where the CPU can, else under TCG (never skipped). Every QEMU this suite starts is
 * ended by its pid afterwards, whatever happened.
 */
import * as grpc from "@grpc/grpc-js";
import * as path from "node:path";
import { HypervisorKind } from "../../gen/steward/v1/host_pb";
import { EventService } from "../../gen/steward/v1/event_service_pb";
import { PoolService } from "../../gen/steward/v1/pool_service_pb";
import { createClient } from "../../src/client/steward-client";
import { makeTempDir, removeDir } from "../fixtures/temp-dir";
import { PowerState, VmClass, type VmStats } from "../../gen/steward/v1/vm_pb";
import { ConsoleClient } from "../fixtures/console-client";
import { rpcError } from "../fixtures/expect-rpc-error";
import { int, str } from "../fixtures/property-values";
import { installTestGuest, killQemusOf, TEST_GUEST_KERNEL } from "../fixtures/qemu-guests";
import { serverForSuite, type ServerWithClients } from "../fixtures/server-with-clients";

/** A server on QEMU for the describe block; stopping it leaves VMs running, as it should, so the QEMUs its tests started are ended first, by their pids. */
function qemuServerForSuite(): ServerWithClients {
  return serverForSuite(["--hypervisor", "qemu"], undefined, (server) => killQemusOf(path.join(server.dataDir, "qemu")));
}

// A boot takes about 6 s under TCG; a test boots up to three times.
jest.setTimeout(180_000);

/** How long the test guest may take to boot and answer on its console. */
const BOOT_MS = 60_000;

describe("real guests under QEMU, through the API", () => {
  const suite = qemuServerForSuite();

  beforeAll(async () => {
    installTestGuest(path.join(suite.server.dataDir, "kernels"));
    const properties = { kernel: str(TEST_GUEST_KERNEL), kernelopts: str("quiet"), memory: int(256), maxmem: int(512), vcpus: int(1) };
    await suite.vms.createVm({ name: "tpl", klass: VmClass.TEMPLATE_VM, label: "black", properties });
    await suite.vms.createVm({ name: "work", klass: VmClass.APP_VM, label: "blue", template: "tpl" });
  });

  const state = async (vm: string) => (await suite.vms.getVm({ vm })).vm!.state;

  /** A console session on a VM that is booting: it sees the boot from its start (the console keeps it). */
  async function booted(vm: string): Promise<ConsoleClient> {
    const session = new ConsoleClient(suite.vms, vm);
    await session.waitFor(/steward-test-guest: ready/, BOOT_MS);
    return session;
  }

  it("says in GetHostInfo whether QEMU runs guests under KVM or TCG", async () => {
    const { host } = await suite.host.getHostInfo({});
    expect(host!.hypervisorVersion).toMatch(/^QEMU emulator version/);
    expect([HypervisorKind.QEMU_KVM, HypervisorKind.QEMU_TCG]).toContain(host!.hypervisor);
  });

  it("boots the guest, which prints on its console and sees its disks in the plan's order with their read-only flags", async () => {
    const started = await suite.vms.startVm({ vm: "work" });
    expect(started.state).toBe(PowerState.RUNNING);
    expect(started.runtime!.pid).toBeGreaterThan(1);
    const console = await booted("work");
    // root (from the template, read-write: a snapshot of its own), private, volatile.
    expect(console.output).toMatch(/disk vda \d+ 0\r?\n/);
    expect(console.output).toMatch(/disk vdb \d+ 0\r?\n/);
    expect(console.output).toMatch(/disk vdc \d+ 0\r?\n/);
    expect(console.output).not.toMatch(/disk vdd /);
    console.cancel();
  });

  it("pauses and unpauses the guest, which goes on answering on its console", async () => {
    expect((await suite.vms.pauseVm({ vm: "work" })).state).toBe(PowerState.PAUSED);
    const console = new ConsoleClient(suite.vms, "work");
    console.type("disks\n");
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(console.output).not.toMatch(/done disks/);
    expect((await suite.vms.unpauseVm({ vm: "work" })).state).toBe(PowerState.RUNNING);
    await console.waitFor(/done disks/, BOOT_MS);
    console.cancel();
  });

  it("samples the guest's use from QMP and /proc: its vCPU's time, its balloon, QEMU's resident memory, and each volume's I/O", async () => {
    const stats = async () => (await suite.vms.getVmStats({ vm: "work" })).stats!;
    const first = await stats();
    expect(first).toMatchObject({ vm: "work", state: PowerState.RUNNING, maxMemoryKib: 512n * 1024n });
    expect(first.volumes.map((volume) => volume.volume)).toEqual(["root", "private", "volatile"]);
    // The guest read its disks' markers as it booted.
    expect(first.volumes.every((volume) => volume.readOps > 0n && volume.readBytes >= 512n)).toBe(true);
    expect(first.blockReadBytes).toBe(first.volumes.reduce((sum, volume) => sum + volume.readBytes, 0n));
    expect(first.rssKib).toBeGreaterThan(16n * 1024n);
    expect(cpuSeconds(first)).toBeGreaterThan(0);
    // Booted with maxmem, then ballooned down to memory once the guest's balloon driver runs.
    let latest = first;
    for (let tries = 0; tries < 100 && latest.memoryKib !== 256n * 1024n; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      latest = await stats();
    }
    expect(latest.memoryKib).toBe(256n * 1024n);

    const console = new ConsoleClient(suite.vms, "work");
    await typeUntil(console, "mark vdb counted\n", /done mark/);
    console.cancel();
    const written = await stats();
    const privateOf = (sample: VmStats) => sample.volumes.find((volume) => volume.volume === "private")!;
    expect(privateOf(written).writeOps).toBeGreaterThan(privateOf(first).writeOps);
    expect(privateOf(written).writeBytes).toBeGreaterThanOrEqual(privateOf(first).writeBytes + 512n);
    expect(cpuSeconds(written)).toBeGreaterThan(cpuSeconds(first));
    expect(written.cpuUsagePercent).toBeGreaterThan(0);
    expect(written.cpuUsagePercent).toBeLessThanOrEqual(100 * 1.05);
  });

  it("watches the guest's stats at an interval; while it is paused, its vCPU's time stands still", async () => {
    const abort = new AbortController();
    const samples: VmStats[] = [];
    try {
      for await (const message of suite.vms.watchVmStats({ vm: "work", interval: { seconds: 0n, nanos: 200_000_000 } }, { signal: abort.signal })) {
        samples.push(message.stats!);
        if (samples.length === 2) await suite.vms.pauseVm({ vm: "work" });
        if (samples.length === 5) abort.abort();
      }
    } catch (error) {
      expect((error as grpc.ServiceError).code).toBe(grpc.status.CANCELLED);
    } finally {
      await suite.vms.unpauseVm({ vm: "work" });
    }
    const paused = samples.slice(3);
    expect(paused.map((sample) => sample.state)).toEqual([PowerState.PAUSED, PowerState.PAUSED]);
    expect(cpuSeconds(paused[1]) - cpuSeconds(paused[0])).toBeLessThan(0.01);
    expect(paused[1].cpuUsagePercent).toBeLessThan(5);
  });

  it("keeps what the guest wrote to its private volume across a restart, and not what it wrote to its snap_on_start root", async () => {
    const console = await booted("work");
    await typeUntil(console, "mark vdb kept-in-private\n", /done mark/);
    await typeUntil(console, "mark vda lost-from-root\n", /done mark[\s\S]*done mark/);
    console.cancel();

    // A graceful shutdown: the guest powers off at the power button.
    const shutdown = await suite.vms.shutdownVm({ vm: "work", wait: true });
    expect(shutdown.state).toBe(PowerState.HALTED);

    await suite.vms.startVm({ vm: "work" });
    const again = await booted("work");
    expect(again.output).toMatch(/marker vdb kept-in-private/);
    expect(again.output).toMatch(/marker vda -/);
    again.cancel();
  });

  it("kills the guest at once", async () => {
    const started = Date.now();
    expect((await suite.vms.killVm({ vm: "work" })).state).toBe(PowerState.HALTED);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await state("work")).toBe(PowerState.HALTED);
    expect((await rpcError(suite.vms.pauseVm({ vm: "work" }))).code).toBe(grpc.status.FAILED_PRECONDITION);
  });

  it("tells a guest's panic as a crash: domain-shutdown, the VM halts, the console stream ends, and its volumes are settled as on any halt", async () => {
    await suite.vms.startVm({ vm: "work" });
    const console = await booted("work");
    await typeUntil(console, "mark vda written-before-the-crash\n", /done mark/);
    const events = createClient(EventService, suite.server.tcp);
    const shutdown = (async () => {
      for await (const message of events.events({ vm: "work", namePrefixes: ["domain-shutdown"] }, { timeoutMs: 60_000 })) {
        if (message.kind.case === "event" && message.kind.value.name === "domain-shutdown") return message.kind.value;
      }
      return undefined;
    })();
    console.type("run echo c > /proc/sysrq-trigger\n");
    expect(await console.ended).toBeUndefined();
    const told = await shutdown;
    expect(told?.subject).toBe("work");
    expect(told?.kwargs).toEqual({ cause: "crashed", detail: expect.stringMatching(/^the guest panicked/) });
    events.close();
    for (let tries = 0; tries < 100 && (await state("work")) !== PowerState.HALTED; tries++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await state("work")).toBe(PowerState.HALTED);

    // Settled as on any halt: the private volume kept, the snap_on_start root's writes gone.
    await suite.vms.startVm({ vm: "work" });
    const again = await booted("work");
    expect(again.output).toMatch(/marker vdb kept-in-private/);
    expect(again.output).toMatch(/marker vda -/);
    again.cancel();
    await suite.vms.killVm({ vm: "work" });
  });
});

/** A sample's CPU time, in seconds. */
function cpuSeconds(stats: VmStats): number {
  return Number(stats.cpuTime!.seconds) + stats.cpuTime!.nanos / 1e9;
}

/** Types `text` until the console's output matches `done` (what is typed before the guest reads its console may be lost). */
async function typeUntil(console: ConsoleClient, text: string, done: RegExp): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    console.type(text);
    try {
      await console.waitFor(done, 5000);
      return;
    } catch (error) {
      if (attempt >= 5) throw error;
    }
  }
}

describe("the guest agent's facts, and starts that wait for the guest", () => {
  const suite = qemuServerForSuite();

  beforeAll(async () => {
    installTestGuest(path.join(suite.server.dataDir, "kernels"));
    const guest = { kernel: str(TEST_GUEST_KERNEL), kernelopts: str("quiet"), memory: int(256), maxmem: int(0), vcpus: int(1) };
    await suite.vms.createVm({ name: "agent", klass: VmClass.STANDALONE_VM, label: "blue", properties: guest });
    // No kernel and an empty root: the firmware finds nothing to boot, and no agent ever answers.
    await suite.vms.createVm({ name: "bare", klass: VmClass.STANDALONE_VM, label: "red", properties: { kernel: str(""), memory: int(64), maxmem: int(0), vcpus: int(1) } });
  });

  it("returns from a start that waits for the guest once its agent answers, and tells the guest's OS release and addresses", async () => {
    const started = await suite.vms.startVm({ vm: "agent", waitForGuest: true });
    expect(started.state).toBe(PowerState.RUNNING);
    // No wait: the agent answered already.
    const asked = Date.now();
    const { fields } = await suite.vms.getVmOsRelease({ vm: "agent" });
    expect(Date.now() - asked).toBeLessThan(3000);
    expect(fields).toEqual({ ID: "steward-test-guest", NAME: "Steward test guest", PRETTY_NAME: "Steward test guest 1", VERSION_ID: "1" });
    // The test guest has no network interface: only loopback, which is left out.
    expect((await suite.vms.getVmAddresses({ vm: "agent" })).addresses).toEqual([]);
  });

  it("says GUEST_AGENT_ABSENT for a guest whose agent does not answer, and VM_BAD_STATE for one that is not running", async () => {
    await suite.vms.startVm({ vm: "bare" });
    const absent = await rpcError(suite.vms.getVmAddresses({ vm: "bare" }));
    expect(absent).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, info: expect.objectContaining({ reason: "GUEST_AGENT_ABSENT" }) });
    expect((await rpcError(suite.vms.getVmOsRelease({ vm: "bare" }))).info?.reason).toBe("GUEST_AGENT_ABSENT");
    await suite.vms.killVm({ vm: "bare" });
    expect((await rpcError(suite.vms.getVmOsRelease({ vm: "bare" }))).info?.reason).toBe("VM_BAD_STATE");
  });

  it("undoes a start that waits for the guest when the call's deadline passes first: the VM is halted again", async () => {
    const late = await rpcError(suite.vms.startVm({ vm: "bare", waitForGuest: true }, { timeoutMs: 1500 }));
    expect(late.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    let state = PowerState.UNSPECIFIED;
    for (let tries = 0; tries < 100; tries++) {
      state = (await suite.vms.getVm({ vm: "bare" })).vm!.state;
      if (state === PowerState.HALTED) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(state).toBe(PowerState.HALTED);
  });
});

describe("guests on a qcow2 pool: backing chains and encrypted volatile volumes opened from descriptors", () => {
  const suite = qemuServerForSuite();
  let elsewhere: string;
  beforeAll(async () => {
    installTestGuest(path.join(suite.server.dataDir, "kernels"));
    elsewhere = makeTempDir("stq2-");
    const pools = createClient(PoolService, suite.server.tcp);
    await pools.addPool({ name: "images", driver: "qcow2", parameters: { dir_path: path.join(elsewhere, "images"), ephemeral_volatile: "true" } });
    pools.close();
    const guest = { kernel: str(TEST_GUEST_KERNEL), kernelopts: str("quiet"), memory: int(256), maxmem: int(0), vcpus: int(1) };
    await suite.vms.createVm({ name: "qtpl", klass: VmClass.TEMPLATE_VM, label: "black", pool: "images", properties: guest });
    await suite.vms.createVm({ name: "qwork", klass: VmClass.APP_VM, label: "blue", template: "qtpl", pool: "images" });
  });
  afterAll(() => removeDir(elsewhere));

  it("boots an AppVM whose root is an overlay of its template's image, reading what the template wrote, and writes its encrypted volatile volume", async () => {
    await suite.vms.startVm({ vm: "qtpl" });
    const template = new ConsoleClient(suite.vms, "qtpl");
    await template.waitFor(/steward-test-guest: ready/, BOOT_MS);
    await typeUntil(template, "mark vda from-the-template\n", /done mark/);
    template.cancel();
    await suite.vms.shutdownVm({ vm: "qtpl", wait: true });

    await suite.vms.startVm({ vm: "qwork" });
    const work = new ConsoleClient(suite.vms, "qwork");
    await work.waitFor(/steward-test-guest: ready/, BOOT_MS);
    expect(work.output).toMatch(/marker vda from-the-template/);
    expect(work.output).toMatch(/disk vdc \d+ 0/);
    await typeUntil(work, "mark vdc scratch\n", /done mark/);
    await typeUntil(work, "disks\n", /marker vdc scratch[\s\S]*done disks/);
    work.cancel();
    await suite.vms.killVm({ vm: "qwork" });
  });
});
