import * as grpc from "@grpc/grpc-js";
import { AddressFamily, PowerState, VmClass, VmView } from "../../gen/steward/v1/vm_pb";
import { KillWho } from "../../gen/steward/v1/vm_service_pb";
import { rpcError } from "../fixtures/expect-rpc-error";
import { bool, int, vmRef } from "../fixtures/property-values";
import { createdVm } from "../fixtures/made-vms";
import { tapPerVm } from "../fixtures/participants";
import { serverForSuite, type ServerWithClients } from "../fixtures/server-with-clients";

const seconds = (t: { seconds: bigint; nanos: number } | undefined) => Number(t!.seconds) + t!.nanos / 1e9;

async function haltedSoon(vms: ServerWithClients["vms"], vm: string): Promise<PowerState> {
  for (let i = 0; i < 100; i++) {
    const state = (await vms.getVm({ vm })).vm!.state;
    if (state === PowerState.HALTED) return state;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return (await vms.getVm({ vm })).vm!.state;
}

describe("the VM contract's seed fields, through the gRPC API", () => {
  const suite = serverForSuite();
  let vms: ServerWithClients["vms"];
  beforeAll(async () => {
    vms = suite.vms;
    await vms.createVm({ name: "tpl", klass: VmClass.TEMPLATE_VM, label: "black" });
    await vms.createVm({ name: "sys-net", klass: VmClass.STANDALONE_VM, label: "red", properties: { provides_network: bool(true) } });
    await vms.createVm({ name: "work", klass: VmClass.APP_VM, label: "blue", template: "tpl", properties: { netvm: vmRef("sys-net") } });
  });

  describe("create_time, update_time and etag", () => {
    it("are given by every read, the same in GetVm and in both views of ListVms", async () => {
      const { vm } = await vms.getVm({ vm: "work" });
      expect(vm!.etag).toMatch(/^"-?[0-9a-f]+"$/);
      expect(seconds(vm!.createTime)).toBeGreaterThan(Date.now() / 1000 - 60);
      expect(seconds(vm!.updateTime)).toBeGreaterThanOrEqual(seconds(vm!.createTime));
      for (const view of [VmView.BASIC, VmView.FULL]) {
        const listed = (await vms.listVms({ view })).vms.find((v) => v.name === "work")!;
        expect({ etag: listed.etag, createTime: listed.createTime, updateTime: listed.updateTime }).toEqual({
          etag: vm!.etag,
          createTime: vm!.createTime,
          updateTime: vm!.updateTime,
        });
      }
    });

    it("change with a write to the VM, and not with its power state or its notes", async () => {
      const before = (await vms.getVm({ vm: "work" })).vm!;
      await vms.setNotes({ vm: "work", notes: "not part of the etag" });
      await vms.startVm({ vm: "work" });
      const running = (await vms.getVm({ vm: "work" })).vm!;
      expect(running.etag).toBe(before.etag);
      expect(running.updateTime).toEqual(before.updateTime);
      await vms.killVm({ vm: "work" });
      await vms.killVm({ vm: "sys-net" });
      await new Promise((resolve) => setTimeout(resolve, 5));
      await vms.setProperty({ vm: "work", name: "vcpus", value: int(2) });
      const after = (await vms.getVm({ vm: "work" })).vm!;
      expect(after.etag).not.toBe(before.etag);
      expect(seconds(after.updateTime)).toBeGreaterThan(seconds(before.updateTime));
      expect(after.createTime).toEqual(before.createTime);
    });
  });

  describe("the etag precondition", () => {
    const staleEtag = '"1234abcd"';
    const mutations: [string, (etag: string) => Promise<unknown>][] = [
      ["SetProperty", (etag) => vms.setProperty({ vm: "work", name: "vcpus", value: int(3), etag })],
      ["ResetProperty", (etag) => vms.resetProperty({ vm: "work", name: "vcpus", etag })],
      ["SetFeature", (etag) => vms.setFeature({ vm: "work", name: "gui", value: "1", etag })],
      ["RemoveFeature", (etag) => vms.removeFeature({ vm: "work", name: "gui", allowMissing: true, etag })],
      ["AddTag", (etag) => vms.addTag({ vm: "work", tag: "blue-team", etag })],
      ["RemoveTag", (etag) => vms.removeTag({ vm: "work", tag: "blue-team", etag })],
      ["RenameVm", (etag) => vms.renameVm({ vm: "work", newName: "job", etag })],
      ["RemoveVm", (etag) => vms.removeVm({ vm: "work", etag })],
    ];

    it.each(mutations)("refuses %s with ABORTED (ETAG_MISMATCH) once the VM changed, and changes nothing", async (_, mutate) => {
      const before = (await vms.getVm({ vm: "work" })).vm!;
      const refused = await rpcError(mutate(staleEtag));
      expect(refused.code).toBe(grpc.status.ABORTED);
      expect(refused.info).toMatchObject({ reason: "ETAG_MISMATCH", metadata: { vm: "work", field: "etag" } });
      const after = (await vms.getVm({ vm: "work" })).vm!;
      expect(after.etag).toBe(before.etag);
      expect(after.tags).toEqual(before.tags);
      expect(after.features).toEqual(before.features);
    });

    it("lets a mutation through with the VM's current etag, after which the old one is stale", async () => {
      const { etag } = (await vms.getVm({ vm: "work" })).vm!;
      expect((await vms.addTag({ vm: "work", tag: "checked", etag })).added).toBe(true);
      const stale = await rpcError(vms.removeTag({ vm: "work", tag: "checked", etag }));
      expect(stale.info?.reason).toBe("ETAG_MISMATCH");
      const { etag: now } = (await vms.getVm({ vm: "work" })).vm!;
      expect((await vms.removeTag({ vm: "work", tag: "checked", etag: now })).removed).toBe(true);
    });

    it("refuses text that is no etag with INVALID_ARGUMENT (INVALID_ETAG)", async () => {
      for (const etag of ["abc", '"xyz"', "W/\"12\"", '"' + "f".repeat(20) + '"']) {
        const refused = await rpcError(vms.setProperty({ vm: "work", name: "vcpus", value: int(3), etag }));
        expect(refused.code).toBe(grpc.status.INVALID_ARGUMENT);
        expect(refused.info).toMatchObject({ reason: "INVALID_ETAG", metadata: { field: "etag" } });
      }
    });

    it("removes a missing VM with allow_missing whatever the etag", async () => {
      await expect(vms.removeVm({ vm: "gone", allowMissing: true, etag: staleEtag })).resolves.toEqual(expect.anything());
    });
  });

  describe("paging of a VM's properties, features and tags", () => {
    beforeAll(async () => {
      await vms.createVm({ name: "many", klass: VmClass.STANDALONE_VM, label: "red" });
      for (let i = 0; i < 150; i++) {
        await vms.setFeature({ vm: "many", name: `f${String(i).padStart(3, "0")}`, value: String(i) });
        await vms.addTag({ vm: "many", tag: `t${String(i).padStart(3, "0")}` });
      }
    });

    it("gives 100 by default, at most 1000, and the rest after the next token", async () => {
      const features = await vms.listFeatures({ vm: "many" });
      expect(Object.keys(features.features)).toHaveLength(100);
      const more = await vms.listFeatures({ vm: "many", pageToken: features.nextPageToken });
      expect([Object.keys(more.features).length, more.nextPageToken]).toEqual([50, ""]);
      expect({ ...features.features, ...more.features }).toEqual((await vms.getVm({ vm: "many" })).vm!.features);

      const tags = await vms.listTags({ vm: "many", pageSize: 60 });
      const tagsAfter = await vms.listTags({ vm: "many", pageSize: 5000, pageToken: tags.nextPageToken });
      expect([...tags.tags, ...tagsAfter.tags]).toEqual((await vms.getVm({ vm: "many" })).vm!.tags);
      expect(tagsAfter.nextPageToken).toBe("");

      const properties = await vms.listProperties({ vm: "many", pageSize: 10 });
      expect(properties.properties).toHaveLength(10);
      const names = properties.properties.map((p) => p.name);
      expect(names).toEqual([...names].sort());
      let all = [...properties.properties];
      let token = properties.nextPageToken;
      while (token) {
        const page = await vms.listProperties({ vm: "many", pageSize: 10, pageToken: token });
        all = all.concat(page.properties);
        token = page.nextPageToken;
      }
      expect(all.map((p) => p.name).sort()).toEqual((await vms.getVm({ vm: "many" })).vm!.properties.map((p) => p.name).sort());
    });

    it("refuses a token of another VM's listing, of another list, or made up, and a negative size", async () => {
      const { nextPageToken } = await vms.listTags({ vm: "many", pageSize: 1 });
      for (const call of [
        vms.listTags({ vm: "work", pageToken: nextPageToken }),
        vms.listFeatures({ vm: "many", pageToken: nextPageToken }),
        vms.listTags({ vm: "many", pageToken: Buffer.from(JSON.stringify({ after: "t100", filter: { vm: "many", list: "tags" } })).toString("base64url") }),
        vms.listVms({ pageToken: nextPageToken }),
      ]) {
        const refused = await rpcError(call);
        expect([refused.code, refused.info?.reason, refused.info?.metadata.field]).toEqual([grpc.status.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN", "page_token"]);
      }
      expect((await rpcError(vms.listProperties({ vm: "many", pageSize: -1 }))).info?.metadata.field).toBe("page_size");
    });
  });

  describe("runtime facts", () => {
    afterEach(async () => {
      for (const vm of ["work", "sys-net"]) await vms.killVm({ vm }).catch(() => undefined);
    });

    it("come back from StartVm: start time, the hypervisor's pid, the addresses", async () => {
      const started = await vms.startVm({ vm: "work" });
      expect(started.state).toBe(PowerState.RUNNING);
      const runtime = started.runtime!;
      expect(seconds(runtime.startTime)).toBeGreaterThan(Date.now() / 1000 - 60);
      // The simulated guests run inside the server's process.
      expect(runtime.pid).toBe(process.pid);
      const { vm } = await vms.getVm({ vm: "work" });
      const ip = vm!.properties.find((p) => p.name === "ip")!.value!.kind.value as string;
      expect(ip).toMatch(/^10\.137\./);
      expect(runtime.ipv4).toBe(ip);
      expect(runtime.addresses).toEqual([expect.objectContaining({ family: AddressFamily.INET, address: ip })]);
      expect(vm!.runtime).toEqual(runtime);
    });

    it("are what ListVms' pid filter selects by: running VMs of that process only", async () => {
      await vms.startVm({ vm: "work" });
      const byPid = await vms.listVms({ pid: process.pid });
      expect(byPid.vms.map((v) => v.name).sort()).toEqual(["sys-net", "work"]);
      expect(byPid.totalSize).toBe(2);
      expect((await vms.listVms({ pid: process.pid, view: VmView.FULL })).vms.map((v) => v.name).sort()).toEqual(["sys-net", "work"]);
      expect((await vms.listVms({ pid: process.pid + 1 })).vms).toEqual([]);
      const refused = await rpcError(vms.listVms({ pid: -1 }));
      expect(refused.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(refused.info?.metadata.field).toBe("pid");
    });
  });

  describe("KillVm's signal and who", () => {
    afterEach(async () => {
      for (const vm of ["work", "sys-net"]) await vms.killVm({ vm }).catch(() => undefined);
    });

    it("ends the VM on SIGTERM, as QEMU does, to the leader or to all", async () => {
      for (const who of [KillWho.LEADER, KillWho.ALL]) {
        await vms.startVm({ vm: "work" });
        await vms.killVm({ vm: "work", signal: 15, who });
        expect(await haltedSoon(vms, "work")).toBe(PowerState.HALTED);
      }
    });

    it("delivers a signal that does not end the VM and leaves it running", async () => {
      await vms.startVm({ vm: "work" });
      expect((await vms.killVm({ vm: "work", signal: 10 })).state).toBe(PowerState.RUNNING);
      expect((await vms.getVm({ vm: "work" })).vm!.state).toBe(PowerState.RUNNING);
      expect((await vms.killVm({ vm: "work", signal: 0 })).state).toBe(PowerState.HALTED);
    });

    it("refuses a signal out of range and an unknown who with INVALID_ARGUMENT naming the field", async () => {
      await vms.startVm({ vm: "work" });
      for (const signal of [-1, 65]) {
        const refused = await rpcError(vms.killVm({ vm: "work", signal }));
        expect(refused.code).toBe(grpc.status.INVALID_ARGUMENT);
        expect(refused.info).toMatchObject({ reason: "INVALID_SIGNAL", metadata: { field: "signal" } });
      }
      const badWho = await rpcError(vms.killVm({ vm: "work", who: 7 as KillWho }));
      expect(badWho.info).toMatchObject({ reason: "INVALID_KILL_WHO", metadata: { field: "who" } });
      expect((await vms.getVm({ vm: "work" })).vm!.state).toBe(PowerState.RUNNING);
    });
  });

  it("refuses CreateVm with volumes from an image the images folder does not hold, and makes no VM", async () => {
    const refused = await rpcError(vms.createVm({ name: "from-image", klass: VmClass.TEMPLATE_VM, label: "black", volumes: { root: { source: { case: "image", value: { file: "debian-12.qcow2" } } } } }));
    expect(refused.code).toBe(grpc.status.NOT_FOUND);
    expect(refused.info).toMatchObject({ reason: "IMAGE_NOT_FOUND", metadata: { image: "debian-12.qcow2" } });
    expect((await rpcError(vms.getVm({ vm: "from-image" }))).code).toBe(grpc.status.NOT_FOUND);
  });
});

describe("a running VM's host-side interfaces, through the gRPC API", () => {
  const suite = serverForSuite([], () => [tapPerVm("00:16:3e:5e:6c:09")]);

  it("are in StartVm's runtime facts and the VM's, and gone once it halts", async () => {
    const vm = createdVm(await suite.vms.createVm({ name: "tapped", klass: VmClass.STANDALONE_VM, label: "red" }))!;
    const { runtime } = await suite.vms.startVm({ vm: "tapped" });
    expect(runtime!.interfaces.map(({ name, mac }) => ({ name, mac }))).toEqual([{ name: `vif${vm.qid}.0`, mac: "00:16:3e:5e:6c:09" }]);
    expect(runtime!.vsockCid).toBe(0);
    expect((await suite.vms.getVm({ vm: "tapped" })).vm!.runtime).toEqual(runtime);
    expect((await suite.vms.listVms({ pid: process.pid })).vms[0].runtime).toEqual(runtime);
    await suite.vms.killVm({ vm: "tapped" });
    expect((await suite.vms.getVm({ vm: "tapped" })).vm!.runtime).toBeUndefined();
  });
});
