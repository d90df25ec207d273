import * as grpc from "@grpc/grpc-js";
import * as fs from "node:fs";
import * as path from "node:path";
import { HostService } from "../../gen/steward/v1/host_service_pb";
import { VmClass } from "../../gen/steward/v1/vm_pb";
import { VmService } from "../../gen/steward/v1/vm_service_pb";
import { VolumeService } from "../../gen/steward/v1/volume_service_pb";
import { createClient, type StewardClient } from "../../src/client/steward-client";
import { rpcError } from "../fixtures/expect-rpc-error";
import { diskRecorder } from "../fixtures/participants";
import { str } from "../fixtures/property-values";
import { startTestServer, type TestServer } from "../fixtures/test-server";

const MiB = 1024 * 1024;

describe("a VM's kernel volume: the modules of the host's kernel it boots, read-only", () => {
  let server: TestServer;
  let vms: StewardClient<typeof VmService>;
  let host: StewardClient<typeof HostService>;
  let volumes: StewardClient<typeof VolumeService>;
  const { participant: recorder, launched } = diskRecorder();
  const kernelRef = (vm: string) => ({ vm, name: "kernel", pool: "", vid: "" });
  let kernels: string;

  beforeAll(async () => {
    server = await startTestServer([], {}, () => [recorder]);
    vms = createClient(VmService, server.tcp);
    host = createClient(HostService, server.tcp);
    volumes = createClient(VolumeService, server.tcp);
    kernels = path.join(server.dataDir, "kernels");
    fs.mkdirSync(path.join(kernels, "6.1.0-steward"));
    fs.writeFileSync(path.join(kernels, "6.1.0-steward", "modules.img"), Buffer.alloc(MiB, 1));
    fs.mkdirSync(path.join(kernels, "no-modules"));
  });
  afterAll(async () => {
    vms.close();
    host.close();
    volumes.close();
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
});
