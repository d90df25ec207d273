import * as grpc from "@grpc/grpc-js";
import * as fs from "node:fs";
import * as path from "node:path";
import { HostService } from "../../gen/steward/v1/host_service_pb";
import { VmClass } from "../../gen/steward/v1/vm_pb";
import { VmService } from "../../gen/steward/v1/vm_service_pb";
import { PoolService } from "../../gen/steward/v1/pool_service_pb";
import { VolumeFormat } from "../../gen/steward/v1/volume_pb";
import { VolumeService } from "../../gen/steward/v1/volume_service_pb";
import { createClient, type StewardClient } from "../../src/client/steward-client";
import { rpcError } from "../fixtures/expect-rpc-error";
import { diskRecorder } from "../fixtures/participants";
import { str } from "../fixtures/property-values";
import { startTestServer, type TestServer } from "../fixtures/test-server";
import { collect, pattern, rebuild, sha256 } from "../fixtures/volume-bytes";

const MiB = 1024 * 1024;

describe("a VM's kernel volume: the modules of the host's kernel it boots, read-only", () => {
  let server: TestServer;
  let vms: StewardClient<typeof VmService>;
  let host: StewardClient<typeof HostService>;
  let volumes: StewardClient<typeof VolumeService>;
  let pools: StewardClient<typeof PoolService>;
  const { participant: recorder, launched } = diskRecorder();
  const kernelRef = (vm: string) => ({ vm, name: "kernel", pool: "", vid: "" });
  let kernels: string;

  beforeAll(async () => {
    server = await startTestServer([], {}, () => [recorder]);
    vms = createClient(VmService, server.tcp);
    host = createClient(HostService, server.tcp);
    volumes = createClient(VolumeService, server.tcp);
    pools = createClient(PoolService, server.tcp);
    kernels = path.join(server.dataDir, "kernels");
    fs.mkdirSync(path.join(kernels, "6.1.0-steward"));
    fs.writeFileSync(path.join(kernels, "6.1.0-steward", "modules.img"), Buffer.alloc(MiB, 1));
    fs.mkdirSync(path.join(kernels, "no-modules"));
  });
  afterAll(async () => {
    vms.close();
    host.close();
    volumes.close();
    pools.close();
    await server.stop();
  });

  it("is listed with the VM's volumes and given to its start, after its own disks", async () => {
    await vms.createVm({ name: "booted", klass: VmClass.STANDALONE_VM, label: "red", properties: { kernel: str("6.1.0-steward") } });
    const listed = (await volumes.listVolumes({ vm: "booted" })).volumes.map((volume) => volume.name);
    expect(listed).toEqual(["private", "root", "volatile", "kernel"]);
    const kernel = (await volumes.getVolume({ volume: kernelRef("booted") })).volume!;
    expect([kernel.pool, kernel.vid, kernel.vm, kernel.rw, kernel.snapOnStart, kernel.saveOnStop, kernel.sizeBytes]).toEqual(["linux-kernel", "6.1.0-steward", "booted", false, false, false, BigInt(MiB)]);
    await vms.startVm({ vm: "booted" });
    const disks = launched.get("booted")!;
    expect(disks.map((disk) => disk.name)).toEqual(["root", "private", "volatile", "kernel"]);
    expect(disks[3]).toMatchObject({ path: path.join(kernels, "6.1.0-steward", "modules.img"), format: "raw", readOnly: true });
    await vms.killVm({ vm: "booted" });
  });

  it("follows the kernel property, from the VM, its template or default_kernel", async () => {
    await vms.createVm({ name: "tpl", klass: VmClass.TEMPLATE_VM, label: "black" });
    await vms.createVm({ name: "app", klass: VmClass.APP_VM, label: "red", template: "tpl" });
    // None: the VM boots its own kernel from its root.
    expect((await volumes.listVolumes({ vm: "app" })).volumes.map((volume) => volume.name)).not.toContain("kernel");
    expect((await rpcError(volumes.getVolume({ volume: kernelRef("app") }))).code).toBe(grpc.status.NOT_FOUND);
    await host.setGlobalProperty({ name: "default_kernel", value: str("6.1.0-steward") });
    expect((await volumes.getVolume({ volume: kernelRef("app") })).volume?.vid).toBe("6.1.0-steward");
    // A start boots default_kernel's modules too.
    await vms.startVm({ vm: "app" });
    expect(launched.get("app")!.at(-1)).toMatchObject({ name: "kernel", path: path.join(kernels, "6.1.0-steward", "modules.img"), readOnly: true });
    await vms.killVm({ vm: "app" });
    // A kernel without modules gives none, and a start then has no kernel disk.
    await vms.setProperty({ vm: "tpl", name: "kernel", value: str("no-modules") });
    expect((await rpcError(volumes.getVolume({ volume: kernelRef("app") }))).code).toBe(grpc.status.NOT_FOUND);
    await vms.startVm({ vm: "app" });
    expect(launched.get("app")!.map((disk) => disk.name)).toEqual(["root", "private", "volatile"]);
    await vms.killVm({ vm: "app" });
    await host.resetGlobalProperty({ name: "default_kernel" });
  });

  it("never follows a symbolic link out of the kernel folder", async () => {
    fs.mkdirSync(path.join(kernels, "linked"));
    fs.symlinkSync("/etc/hostname", path.join(kernels, "linked", "modules.img"));
    fs.symlinkSync("/etc", path.join(kernels, "folder-link"));
    for (const kernel of ["linked", "folder-link"]) {
      await vms.createVm({ name: `vm-${kernel}`, klass: VmClass.STANDALONE_VM, label: "red", properties: { kernel: str(kernel) } });
      expect((await rpcError(volumes.getVolume({ volume: kernelRef(`vm-${kernel}`) }))).code).toBe(grpc.status.NOT_FOUND);
      await vms.startVm({ vm: `vm-${kernel}` });
      expect(launched.get(`vm-${kernel}`)!.map((disk) => disk.name)).not.toContain("kernel");
      await vms.killVm({ vm: `vm-${kernel}` });
    }
  });

  it("refuses changes of it, naming the property that changes it", async () => {
    for (const change of [
      volumes.resizeVolume({ volume: kernelRef("booted"), sizeBytes: BigInt(2 * MiB) }),
      volumes.snapshotVolume({ volume: kernelRef("booted") }),
      volumes.clearVolume({ volume: kernelRef("booted") }),
    ]) {
      const refused = await rpcError(change);
      expect([refused.code, refused.info?.reason, refused.info?.metadata.kernel]).toEqual([grpc.status.FAILED_PRECONDITION, "VOLUME_READ_ONLY", "6.1.0-steward"]);
    }
    expect(fs.statSync(path.join(kernels, "6.1.0-steward", "modules.img")).size).toBe(MiB);
  });

  describe("the linux-kernel pool: the host's kernel folder", () => {
    const inPool = (vid: string) => ({ pool: "linux-kernel", vid, vm: "", name: "" });
    /** A kernel whose modules image has holes: 4 MiB, data in its second MiB only. */
    const sparseModules = () => {
      fs.mkdirSync(path.join(kernels, "6.2.0-sparse"), { recursive: true });
      const file = path.join(kernels, "6.2.0-sparse", "modules.img");
      fs.writeFileSync(file, "");
      fs.truncateSync(file, 4 * MiB);
      const data = pattern(MiB, 5);
      const handle = fs.openSync(file, "r+");
      fs.writeSync(handle, data, 0, data.length, MiB);
      fs.closeSync(handle);
      return fs.readFileSync(file);
    };

    it("is listed with the pools, its volumes the kernels that have modules", async () => {
      sparseModules();
      const listed = (await pools.listPools({})).pools.find((pool) => pool.name === "linux-kernel")!;
      expect([listed.driver, listed.parameters.dir_path, listed.volumeCount]).toEqual(["linux-kernel", kernels, 2]);
      const pool = (await pools.getPool({ pool: "linux-kernel" })).pool!;
      expect(pool.usageBytes).toBeGreaterThanOrEqual(BigInt(2 * MiB));
      expect(pool.freeBytes).toBeGreaterThan(0n);
      const volumesOf = (await volumes.listVolumes({ pool: "linux-kernel" })).volumes;
      expect(volumesOf.map((volume) => [volume.vid, volume.vm, volume.rw])).toEqual([
        ["6.1.0-steward", "", false],
        ["6.2.0-sparse", "", false],
      ]);
      expect((await volumes.getVolume({ volume: inPool("6.2.0-sparse") })).volume?.sizeBytes).toBe(BigInt(4 * MiB));
      expect((await rpcError(volumes.getVolume({ volume: inPool("no-modules") }))).code).toBe(grpc.status.NOT_FOUND);
      // Named as the kernel property names them, "+" included; a path never.
      fs.mkdirSync(path.join(kernels, "6.1.0+deb12"), { recursive: true });
      fs.writeFileSync(path.join(kernels, "6.1.0+deb12", "modules.img"), Buffer.alloc(MiB));
      expect((await volumes.getVolume({ volume: inPool("6.1.0+deb12") })).volume?.vid).toBe("6.1.0+deb12");
      for (const vid of ["../6.1.0-steward", "6.1.0-steward/modules.img", ".."]) {
        expect([vid, (await rpcError(volumes.getVolume({ volume: inPool(vid) }))).code]).toEqual([vid, grpc.status.INVALID_ARGUMENT]);
      }
      fs.rmSync(path.join(kernels, "6.1.0+deb12"), { recursive: true });
    });

    it("exports a kernel's modules, by the pool or by a VM that boots it, holes as holes", async () => {
      const content = sparseModules();
      await vms.createVm({ name: "sparse-boot", klass: VmClass.STANDALONE_VM, label: "red", properties: { kernel: str("6.2.0-sparse") } });
      for (const volume of [inPool("6.2.0-sparse"), kernelRef("sparse-boot")]) {
        const exported = rebuild(await collect(volumes.exportVolume({ volume })));
        expect(exported.content.equals(content)).toBe(true);
        expect(exported.sent).toBe(MiB);
        expect(exported.trailer.sha256).toBe(sha256(content));
      }
      expect((await rpcError(collect(volumes.exportVolume({ volume: inPool("6.2.0-sparse"), format: VolumeFormat.QCOW2 })))).code).toBe(grpc.status.INVALID_ARGUMENT);
      expect((await rpcError(collect(volumes.exportVolume({ volume: inPool("6.2.0-sparse"), revision: "1" })))).info?.reason).toBe("REVISION_NOT_FOUND");
      // A kernel's modules keep no revisions: the list is empty, not refused.
      for (const volume of [inPool("6.2.0-sparse"), kernelRef("sparse-boot")]) expect((await volumes.listSnapshots({ volume })).revisions).toEqual([]);
      expect((await rpcError(volumes.listSnapshots({ volume: inPool("no-modules") }))).code).toBe(grpc.status.NOT_FOUND);
    });

    it("is read-only: neither it nor its volumes change through Steward", async () => {
      sparseModules();
      for (const call of [
        pools.removePool({ pool: "linux-kernel" }),
        pools.setPoolLimit({ pool: "linux-kernel", limitBytes: BigInt(MiB) }),
        pools.setPoolProperty({ pool: "linux-kernel", property: { case: "revisionsToKeep", value: 2 } }),
        volumes.createVolume({ pool: "linux-kernel", vid: "new", sizeBytes: BigInt(MiB) }),
        volumes.deleteVolume({ pool: "linux-kernel", vid: "6.2.0-sparse" }),
      ]) {
        const refused = await rpcError(call);
        expect([refused.code, refused.info?.reason]).toEqual([grpc.status.FAILED_PRECONDITION, "POOL_READ_ONLY"]);
      }
      for (const change of [volumes.resizeVolume({ volume: inPool("6.2.0-sparse"), sizeBytes: BigInt(8 * MiB) }), volumes.clearVolume({ volume: inPool("6.2.0-sparse") })]) {
        expect((await rpcError(change)).info?.reason).toBe("VOLUME_READ_ONLY");
      }
      expect((await rpcError(pools.addPool({ name: "linux-kernel", driver: "file", parameters: { dir_path: path.join(server.dataDir, "elsewhere") } }))).info?.reason).toBe("POOL_EXISTS");
      expect(fs.statSync(path.join(kernels, "6.2.0-sparse", "modules.img")).size).toBe(4 * MiB);
    });
  });
});
