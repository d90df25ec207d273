import * as grpc from "@grpc/grpc-js";
import * as fs from "node:fs";
import * as path from "node:path";
import { PoolService } from "../../gen/steward/v1/pool_service_pb";
import { PowerState, VmClass } from "../../gen/steward/v1/vm_pb";
import { VmService } from "../../gen/steward/v1/vm_service_pb";
import { VolumeService } from "../../gen/steward/v1/volume_service_pb";
import Database from "better-sqlite3";
import { StewardApp } from "../../src/app/app";
import { createClient, type StewardClient } from "../../src/client/steward-client";
import { parseServeConfig } from "../../src/config";
import { LogCapture } from "../fixtures/log-capture";
import { rpcError } from "../fixtures/expect-rpc-error";
import { diskRecorder } from "../fixtures/participants";
import { clonedVm, createdVm } from "../fixtures/made-vms";
import { bool } from "../fixtures/property-values";
import { stopAndReadEvents } from "../fixtures/stored-events";
import { startTestServer, type TestServer } from "../fixtures/test-server";
import { makeTempDir, removeDir } from "../fixtures/temp-dir";
import { collect } from "../fixtures/volume-bytes";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Writes `byte` over 64 KiB at `offset` of a volume's file, as a guest would. */
function guestWrites(file: string, offset: number, byte: number): void {
  const fd = fs.openSync(file, "r+");
  try {
    fs.writeSync(fd, Buffer.alloc(64 * 1024, byte), 0, 64 * 1024, offset);
  } finally {
    fs.closeSync(fd);
  }
}

function byteAt(file: string, offset: number): number {
  const fd = fs.openSync(file, "r");
  try {
    const buffer = Buffer.alloc(1);
    fs.readSync(fd, buffer, 0, 1, offset);
    return buffer[0];
  } finally {
    fs.closeSync(fd);
  }
}

describe("the volumes of VMs", () => {
  let server: TestServer;
  let vms: StewardClient<typeof VmService>;
  let volumes: StewardClient<typeof VolumeService>;
  let pools: StewardClient<typeof PoolService>;
  let elsewhere: string;
  /** What each start's plan held once the storage area had its turn. */
  const { participant: recorder, launched } = diskRecorder();
  const volumeOf = async (vm: string, name: string) => (await volumes.getVolume({ volume: { vm, name, pool: "", vid: "" } })).volume!;

  beforeAll(async () => {
    elsewhere = makeTempDir("steward-vm-volumes-");
    server = await startTestServer([], {}, () => [recorder]);
    vms = createClient(VmService, server.tcp);
    volumes = createClient(VolumeService, server.tcp);
    pools = createClient(PoolService, server.tcp);
    await pools.addPool({ name: "images", driver: "qcow2", parameters: { dir_path: path.join(elsewhere, "images") } });
    await vms.createVm({ name: "tpl", klass: VmClass.TEMPLATE_VM, label: "black" });
    await vms.createVm({ name: "work", klass: VmClass.APP_VM, label: "red", template: "tpl" });
  });

  afterAll(async () => {
    vms?.close();
    volumes?.close();
    pools?.close();
    await server?.stop();
    removeDir(elsewhere);
  });

  it("follow Qubes' table: a TemplateVM owns root, private and volatile; an AppVM's root is a snapshot of its template's", async () => {
    const { vm: tpl } = await vms.getVm({ vm: "tpl" });
    const listed = await volumes.listVolumes({ vm: "tpl" });
    expect(listed.volumes.map((volume) => [volume.name, volume.vid, volume.pool, volume.snapOnStart, volume.saveOnStop, volume.source])).toEqual([
      ["private", `vms/${tpl!.uuid}/private`, "default", false, true, ""],
      ["root", `vms/${tpl!.uuid}/root`, "default", false, true, ""],
      ["volatile", `vms/${tpl!.uuid}/volatile`, "default", false, false, ""],
    ]);
    expect(listed.volumes.map((volume) => Number(volume.sizeBytes))).toEqual([2 * GiB, 10 * GiB, 10 * GiB]);
    for (const volume of listed.volumes) expect(Number(volume.usageBytes)).toBeLessThan(MiB);

    const root = await volumeOf("work", "root");
    expect(root).toMatchObject({ vm: "work", snapOnStart: true, saveOnStop: false, source: `default:vms/${tpl!.uuid}/root`, sizeBytes: BigInt(10 * GiB) });
    expect(await volumeOf("work", "private")).toMatchObject({ snapOnStart: false, saveOnStop: true, source: "" });
  });

  it("that each start makes anew get their files at the first start, or at the first call that needs their bytes, as in Qubes' file-reflink", async () => {
    await vms.createVm({ name: "qtpl", klass: VmClass.TEMPLATE_VM, label: "black", pool: "images" });
    await vms.createVm({ name: "lazy", klass: VmClass.APP_VM, label: "red", template: "qtpl", pool: "images" });
    const [root, privateVolume, volatile] = await Promise.all(["root", "private", "volatile"].map((name) => volumeOf("lazy", name)));
    expect([root, volatile].map((volume) => [volume.name, fs.existsSync(volume.hostPath), Number(volume.usageBytes), Number(volume.sizeBytes)])).toEqual([
      ["root", false, 0, 10 * GiB],
      ["volatile", false, 0, 10 * GiB],
    ]);
    expect(fs.existsSync(privateVolume.hostPath)).toBe(true);
    expect((await volumes.listSnapshots({ volume: { pool: root.pool, vid: root.vid, vm: "", name: "" } })).revisions).toEqual([]);

    // An export reads it as what a start would make of it: all holes.
    const exported = await collect(volumes.exportVolume({ volume: { pool: volatile.pool, vid: volatile.vid, vm: "", name: "" }, revision: "" }));
    expect(exported.filter((message) => message.kind.case === "chunk" && message.kind.value.data.length > 0)).toEqual([]);
    expect(exported.at(-1)?.kind.case).toBe("trailer");
    expect(fs.existsSync(volatile.hostPath)).toBe(true);

    // The first start makes the root an overlay of the template's root, which costs nothing.
    await vms.startVm({ vm: "lazy" });
    expect(fs.existsSync(root.hostPath)).toBe(true);
    const { execFileSync } = await import("node:child_process");
    const info = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", "-U", root.hostPath], { encoding: "utf8" })) as { "virtual-size": number; "backing-filename"?: string };
    expect(info["virtual-size"]).toBe(10 * GiB);
    expect(info["backing-filename"]).toBeDefined();
    await vms.killVm({ vm: "lazy" });
    await vms.removeVm({ vm: "lazy" });
    for (const volume of [root, privateVolume, volatile]) expect(fs.existsSync(volume.hostPath)).toBe(false);
  });

  it("made at each start are made by a change before the first start: a resize makes it of the new size", async () => {
    await vms.createVm({ name: "lazy-resized", klass: VmClass.APP_VM, label: "red", template: "tpl" });
    const volatile = await volumeOf("lazy-resized", "volatile");
    expect(fs.existsSync(volatile.hostPath)).toBe(false);
    await volumes.resizeVolume({ volume: { pool: volatile.pool, vid: volatile.vid, vm: "", name: "" }, sizeBytes: BigInt(12 * GiB) });
    expect(fs.statSync(volatile.hostPath).size).toBe(12 * GiB);
    expect(Number((await volumeOf("lazy-resized", "volatile")).sizeBytes)).toBe(12 * GiB);
    await vms.removeVm({ vm: "lazy-resized" });
    expect(fs.existsSync(volatile.hostPath)).toBe(false);
  });

  it("are the disks of a start, in order; the AppVM's root is its template's root as it was at the start", async () => {
    const tplRoot = (await volumeOf("tpl", "root")).hostPath;
    guestWrites(tplRoot, 0, 0x11);
    await vms.startVm({ vm: "work" });
    const workRoot = await volumeOf("work", "root");
    expect(launched.get("work")).toEqual([
      { name: "root", path: workRoot.hostPath, format: "raw", readOnly: false },
      { name: "private", path: (await volumeOf("work", "private")).hostPath, format: "raw", readOnly: false },
      { name: "volatile", path: (await volumeOf("work", "volatile")).hostPath, format: "raw", readOnly: false },
    ]);
    expect(byteAt(workRoot.hostPath, 0)).toBe(0x11);
    expect(workRoot.isOutdated).toBe(false);
    // The template changes while the AppVM runs: the AppVM's root stays as it was at its start,
    // and says it is outdated (Qubes' is_outdated) until the AppVM starts again.
    await new Promise((resolve) => setTimeout(resolve, 20));
    guestWrites(tplRoot, 0, 0x22);
    expect(byteAt(workRoot.hostPath, 0)).toBe(0x11);
    expect((await volumeOf("work", "root")).isOutdated).toBe(true);
    expect((await volumeOf("work", "private")).isOutdated).toBe(false);
    await vms.killVm({ vm: "work" });
    expect((await volumeOf("work", "root")).isOutdated).toBe(false);
    await vms.startVm({ vm: "work" });
    expect(byteAt((await volumeOf("work", "root")).hostPath, 0)).toBe(0x22);
    expect((await volumeOf("work", "root")).isOutdated).toBe(false);
  });

  it("are settled at a halt: private keeps a revision, root and volatile are emptied", async () => {
    guestWrites((await volumeOf("work", "private")).hostPath, MiB, 0x33);
    guestWrites((await volumeOf("work", "volatile")).hostPath, 0, 0x44);
    await vms.killVm({ vm: "work" });
    expect((await vms.getVm({ vm: "work" })).vm!.state).toBe(PowerState.HALTED);
    const revisions = (await volumes.listSnapshots({ volume: { vm: "work", name: "private", pool: "", vid: "" } })).revisions;
    expect(revisions).toHaveLength(1);
    expect(byteAt((await volumeOf("work", "private")).hostPath, MiB)).toBe(0x33);
    expect(byteAt((await volumeOf("work", "root")).hostPath, 0)).toBe(0);
    expect(byteAt((await volumeOf("work", "volatile")).hostPath, 0)).toBe(0);
    expect(Number((await volumeOf("work", "root")).usageBytes)).toBeLessThan(MiB);
  });

  it("follow a template changed while the AppVM was halted: its next start snapshots the new template's root", async () => {
    await vms.createVm({ name: "tpl2", klass: VmClass.TEMPLATE_VM, label: "black" });
    const { vm: tpl2 } = await vms.getVm({ vm: "tpl2" });
    guestWrites((await volumeOf("tpl2", "root")).hostPath, 0, 0x77);
    await vms.setProperty({ vm: "work", name: "template", value: { kind: { case: "vmValue", value: "tpl2" } } });
    await vms.startVm({ vm: "work" });
    const root = await volumeOf("work", "root");
    expect(root.source).toBe(`default:vms/${tpl2!.uuid}/root`);
    expect(byteAt(root.hostPath, 0)).toBe(0x77);
    await vms.killVm({ vm: "work" });
    await vms.setProperty({ vm: "work", name: "template", value: { kind: { case: "vmValue", value: "tpl" } } });
  });

  it("of a DispVM: its private is a snapshot of its AppVM's private, its root of the template's root", async () => {
    await vms.createVm({ name: "dvm", klass: VmClass.APP_VM, label: "red", template: "tpl", properties: { template_for_dispvms: bool(true) } });
    guestWrites((await volumeOf("dvm", "private")).hostPath, 0, 0x55);
    const { vm: disp } = await vms.createDisposableVm({ template: "dvm" });
    const privateVolume = await volumeOf(disp!.name, "private");
    expect(privateVolume).toMatchObject({ snapOnStart: true, saveOnStop: false, source: expect.stringMatching(/\/private$/) });
    expect((await volumeOf(disp!.name, "root")).source).toBe((await volumeOf("dvm", "root")).source);
    await vms.startVm({ vm: disp!.name });
    expect(byteAt(privateVolume.hostPath, 0)).toBe(0x55);
    expect(byteAt((await volumeOf(disp!.name, "root")).hostPath, 0)).toBe(0x22);
    await vms.killVm({ vm: disp!.name });
    // auto_cleanup removed the DispVM, and its volumes with it.
    expect(fs.existsSync(privateVolume.hostPath)).toBe(false);
  });

  it("go to the pools CreateVm names, for all or per volume; an unknown pool or volume name is refused", async () => {
    await vms.createVm({ name: "in-images", klass: VmClass.STANDALONE_VM, label: "red", pool: "images" });
    expect((await volumes.listVolumes({ vm: "in-images" })).volumes.map((volume) => [volume.name, volume.pool, volume.hostPath.endsWith(".qcow2")])).toEqual([
      ["private", "images", true],
      ["root", "images", true],
      ["volatile", "images", true],
    ]);
    await vms.createVm({ name: "split", klass: VmClass.STANDALONE_VM, label: "red", volumePools: { private: "images" } });
    expect((await volumes.listVolumes({ vm: "split" })).volumes.map((volume) => [volume.name, volume.pool])).toEqual([
      ["private", "images"],
      ["root", "default"],
      ["volatile", "default"],
    ]);
    expect((await rpcError(vms.createVm({ name: "lost", klass: VmClass.STANDALONE_VM, label: "red", pool: "nowhere" }))).info).toMatchObject({ reason: "POOL_NOT_FOUND" });
    const badName = await rpcError(vms.createVm({ name: "lost", klass: VmClass.STANDALONE_VM, label: "red", volumePools: { swap: "images" } }));
    expect({ code: badName.code, field: badName.info?.fieldViolations[0]?.field }).toEqual({ code: grpc.status.INVALID_ARGUMENT, field: "volume_pools[swap]" });
    expect((await rpcError(vms.getVm({ vm: "lost" }))).info?.reason).toBe("VM_NOT_FOUND");
  });

  it("are copied by CloneVm, cheaply where the pool can; a pool holding a VM's volume is not removed", async () => {
    const source = await volumeOf("in-images", "private");
    const image = source.hostPath;
    // Written through qemu's own format: a write into the qcow2 image's raw bytes would corrupt it.
    const { execFileSync } = await import("node:child_process");
    execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -P 0x66 0 64k", image], { stdio: "ignore" });
    const clone = clonedVm(await vms.cloneVm({ vm: "in-images", newName: "in-images-copy" }));
    expect(clone?.name).toBe("in-images-copy");
    const copied = await volumeOf("in-images-copy", "private");
    expect(copied.pool).toBe("images");
    const read = execFileSync("qemu-io", ["-f", "qcow2", "-r", "-c", "read -P 0x66 0 64k", copied.hostPath], { encoding: "utf8" });
    expect(read).not.toMatch(/Pattern verification failed/);
    expect((await rpcError(pools.removePool({ pool: "images" }))).info).toMatchObject({ reason: "POOL_IN_USE" });
    expect((await rpcError(volumes.deleteVolume({ pool: "images", vid: copied.vid }))).info).toMatchObject({ reason: "VOLUME_IN_USE" });
  });

  it("of a read-only clone are read-only, and its launch has them so (machined's CloneImage read_only)", async () => {
    expect(clonedVm(await vms.cloneVm({ vm: "in-images", newName: "in-images-ro", readOnly: true }))?.name).toBe("in-images-ro");
    const own = (await volumes.listVolumes({ vm: "in-images-ro" })).volumes;
    expect(own.map((volume) => [volume.name, volume.rw]).sort()).toEqual([
      ["private", false],
      ["root", false],
      ["volatile", false],
    ]);
    await vms.startVm({ vm: "in-images-ro" });
    expect(launched.get("in-images-ro")?.map((disk) => disk.readOnly)).toEqual([true, true, true]);
    await vms.killVm({ vm: "in-images-ro" });
    expect((await volumeOf("in-images", "private")).rw).toBe(true);
  });

  it("are deleted with their VM", async () => {
    const files = (await volumes.listVolumes({ vm: "split" })).volumes.map((volume) => volume.hostPath);
    await vms.removeVm({ vm: "split" });
    for (const file of files) expect(fs.existsSync(file)).toBe(false);
    expect((await rpcError(volumes.listVolumes({ vm: "split" }))).info?.reason).toBe("VM_NOT_FOUND");
  });
});

describe("VM volumes across a stop", () => {
  it("stay with a VM whose removal a stop cut short before it committed", async () => {
    const dir = makeTempDir();
    const config = parseServeConfig(["--data-dir", dir, "--listen", `unix:${path.join(dir, "s.sock")}`, "--hypervisor", "sim"], {});
    try {
      const first = await StewardApp.start(config, new LogCapture().log);
      let vms = createClient(VmService, first.server.addresses[0]);
      await vms.createVm({ name: "kept", klass: VmClass.STANDALONE_VM, label: "red" });
      vms.close();
      await first.stop();
      // As RemoveVm leaves them when the process dies after marking the volumes, before the VM's record goes.
      const db = new Database(path.join(dir, "steward.db"));
      db.prepare("UPDATE volumes SET state = 'deleting'").run();
      db.close();

      const second = await StewardApp.start(config, new LogCapture().log);
      vms = createClient(VmService, second.server.addresses[0]);
      const volumes = createClient(VolumeService, second.server.addresses[0]);
      const listed = await volumes.listVolumes({ vm: "kept" });
      expect(listed.volumes.map((volume) => volume.name)).toEqual(["private", "root", "volatile"]);
      // Its volatile volume gets its file at its first start; the others have theirs.
      for (const volume of listed.volumes) expect({ [volume.name]: fs.existsSync(volume.hostPath) }).toEqual({ [volume.name]: volume.saveOnStop });
      vms.close();
      volumes.close();
      await second.stop();
    } finally {
      removeDir(dir);
    }
  });
});

describe("VM volume events", () => {
  it("are the VM's own: its volumes come and go with domain-add and domain-delete, and a halt keeps a revision with volume-snapshot", async () => {
    const server = await startTestServer();
    const vms = createClient(VmService, server.tcp);
    const made = createdVm(await vms.createVm({ name: "solo", klass: VmClass.STANDALONE_VM, label: "red" }))!;
    await vms.startVm({ vm: "solo" });
    await vms.killVm({ vm: "solo" });
    await vms.removeVm({ vm: "solo" });
    vms.close();
    const events = (await stopAndReadEvents(server)).filter((event) => event.name.startsWith("volume-"));
    const vid = (name: string) => `vms/${made.uuid}/${name}`;
    expect(events.map((event) => [event.subject, event.name, event.kwargs.vid])).toEqual([
      ["solo", "volume-snapshot", vid("private")],
      ["solo", "volume-snapshot", vid("root")],
    ]);
    // With the VM's and the volume's identity, as Qubes' domain-volume-* events have them.
    expect(events[0].kwargs).toMatchObject({ pool: "default", vm: "solo", volume: "private" });
  });
});
