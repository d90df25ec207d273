import * as grpc from "@grpc/grpc-js";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { PoolService } from "../../gen/steward/v1/pool_service_pb";
import { VmClass } from "../../gen/steward/v1/vm_pb";
import { VmService } from "../../gen/steward/v1/vm_service_pb";
import { VolumeService } from "../../gen/steward/v1/volume_service_pb";
import { createClient, type StewardClient } from "../../src/client/steward-client";
import { rpcError } from "../fixtures/expect-rpc-error";
import { diskRecorder } from "../fixtures/participants";
import { startTestServer, type TestServer } from "../fixtures/test-server";
import { makeTempDir, removeDir } from "../fixtures/temp-dir";

const GiB = 1024 * 1024 * 1024;

function info(file: string, key?: string): { format: string; encrypted?: boolean; "virtual-size": number } {
  const args = key === undefined ? ["info", "--output=json", "-U", file] : ["info", "--output=json", "-U", "--object", `secret,id=k,data=${key}`, "--image-opts", `driver=luks,key-secret=k,file.filename=${file}`];
  return JSON.parse(execFileSync("qemu-img", args, { encoding: "utf8" })) as { format: string; encrypted?: boolean; "virtual-size": number };
}

/** Every file of `folder`, as text, to look for a key in. */
function everything(folder: string): string {
  return (fs.readdirSync(folder, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile() && fs.statSync(path.join(entry.parentPath, entry.name)).size < 64 * 1024 * 1024)
    .map((entry) => fs.readFileSync(path.join(entry.parentPath, entry.name)).toString("latin1"))
    .join("\n");
}

describe("ephemeral volumes: encrypted with a key only the VM's run has", () => {
  let server: TestServer;
  let vms: StewardClient<typeof VmService>;
  let volumes: StewardClient<typeof VolumeService>;
  let pools: StewardClient<typeof PoolService>;
  let elsewhere: string;
  /** What each start's plan held once the storage area had its turn. */
  const { participant: recorder, launched } = diskRecorder();
  const volatileOf = async (vm: string) => (await volumes.getVolume({ volume: { vm, name: "volatile", pool: "", vid: "" } })).volume!;
  const diskOf = (vm: string, name: string) => launched.get(vm)!.find((disk) => disk.name === name)!;

  beforeAll(async () => {
    elsewhere = makeTempDir("steward-ephemeral-");
    server = await startTestServer([], {}, () => [recorder]);
    vms = createClient(VmService, server.tcp);
    volumes = createClient(VolumeService, server.tcp);
    pools = createClient(PoolService, server.tcp);
    await pools.addPool({ name: "secret", driver: "file", parameters: { dir_path: path.join(elsewhere, "secret"), ephemeral_volatile: "true" } });
    await pools.addPool({ name: "images", driver: "qcow2", parameters: { dir_path: path.join(elsewhere, "images"), ephemeral_volatile: "true" } });
    await vms.createVm({ name: "in-raw", klass: VmClass.STANDALONE_VM, label: "red", pool: "secret" });
    await vms.createVm({ name: "in-qcow2", klass: VmClass.STANDALONE_VM, label: "red", pool: "images" });
  });

  afterAll(async () => {
    vms?.close();
    volumes?.close();
    pools?.close();
    await server?.stop();
    removeDir(elsewhere);
  });

  it("is a LUKS image in a raw pool while the VM runs, opened by the launch's key alone, and plain again once it halts", async () => {
    await vms.startVm({ vm: "in-raw" });
    const disk = diskOf("in-raw", "volatile");
    expect(disk).toMatchObject({ format: "luks", path: (await volatileOf("in-raw")).hostPath });
    expect(Buffer.from(disk.key!, "base64")).toHaveLength(32);
    expect(info(disk.path).format).toBe("luks");
    expect(info(disk.path, disk.key)["virtual-size"]).toBe(10 * GiB);
    // The volume keeps its own size; its other disks are as ever.
    expect((await volatileOf("in-raw")).sizeBytes).toBe(BigInt(10 * GiB));
    expect(diskOf("in-raw", "private")).toMatchObject({ format: "raw" });
    expect(diskOf("in-raw", "private").key).toBeUndefined();
    // The key is nowhere on disk: not in the state, the pools or a temporary.
    expect(everything(server.dataDir).includes(disk.key!)).toBe(false);
    expect(everything(elsewhere).includes(disk.key!)).toBe(false);
    expect(fs.readdirSync(path.join(elsewhere, "secret", "tmp~"))).toEqual([]);

    await vms.killVm({ vm: "in-raw" });
    expect(info(disk.path).format).toBe("raw");
    expect(fs.statSync(disk.path).size).toBe(10 * GiB);
    await vms.startVm({ vm: "in-raw" });
    expect(diskOf("in-raw", "volatile").key).not.toBe(disk.key);
    await vms.killVm({ vm: "in-raw" });
  });

  it("is a qcow2 image with LUKS encryption in a qcow2 pool", async () => {
    await vms.startVm({ vm: "in-qcow2" });
    const disk = diskOf("in-qcow2", "volatile");
    expect(disk).toMatchObject({ format: "qcow2" });
    expect(info(disk.path)).toMatchObject({ format: "qcow2", encrypted: true, "virtual-size": 10 * GiB });
    await vms.killVm({ vm: "in-qcow2" });
    expect(info(disk.path).encrypted ?? false).toBe(false);
  });

  it("follows the volume's own ephemeral property, which only a volume made fresh at each start takes", async () => {
    await vms.createVm({ name: "plain", klass: VmClass.STANDALONE_VM, label: "red" });
    await vms.startVm({ vm: "plain" });
    expect(diskOf("plain", "volatile").key).toBeUndefined();
    await vms.killVm({ vm: "plain" });
    await volumes.setVolumeProperty({ volume: { vm: "plain", name: "volatile", pool: "", vid: "" }, property: { case: "ephemeral", value: true } });
    await vms.startVm({ vm: "plain" });
    expect(diskOf("plain", "volatile")).toMatchObject({ format: "luks" });
    await vms.killVm({ vm: "plain" });
    const refused = await rpcError(volumes.setVolumeProperty({ volume: { vm: "plain", name: "private", pool: "", vid: "" }, property: { case: "ephemeral", value: true } }));
    expect({ code: refused.code, field: refused.info?.fieldViolations[0]?.field }).toEqual({ code: grpc.status.INVALID_ARGUMENT, field: "ephemeral" });
  });
});
