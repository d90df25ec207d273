import { PowerState, VmClass, VmView, type Vm } from "../../gen/steward/v1/vm_pb";
import { bool, int, str, vmRef } from "../fixtures/property-values";
import { serverForSuite, type ServerWithClients } from "../fixtures/server-with-clients";
import { clonedVm, createdVm } from "../fixtures/made-vms";

/**
 * ListVms in the FULL view keeps what it derived from each VM between calls: every kind of
 * change must show in the next listing, as GetVm (which builds its answer whole) shows it.
 */
describe("ListVms FULL view through changes", () => {
  const suite = serverForSuite();
  let vms: ServerWithClients["vms"];
  let host: ServerWithClients["host"];
  let disp: string;

  const listed = async (): Promise<Map<string, Vm>> => {
    const all = new Map<string, Vm>();
    let pageToken = "";
    do {
      const page = await vms.listVms({ view: VmView.FULL, pageSize: 2, pageToken });
      for (const vm of page.vms) all.set(vm.name, vm);
      pageToken = page.nextPageToken;
    } while (pageToken);
    return all;
  };
  const valueOf = (vm: Vm | undefined, name: string) => vm?.properties.find((p) => p.name === name)?.value?.kind.value;
  const propertyOf = async (vm: string, name: string) => valueOf((await listed()).get(vm), name);

  beforeAll(async () => {
    ({ vms, host } = suite);
    await vms.createVm({ name: "tpl", klass: VmClass.TEMPLATE_VM, label: "black" });
    await vms.createVm({ name: "net", klass: VmClass.APP_VM, label: "red", template: "tpl", properties: { provides_network: bool(true) } });
    await vms.createVm({ name: "dvm", klass: VmClass.APP_VM, label: "red", template: "tpl", properties: { template_for_dispvms: bool(true) } });
    await vms.createVm({ name: "work", klass: VmClass.APP_VM, label: "blue", template: "tpl", properties: { netvm: vmRef("net") } });
    disp = (await vms.createDisposableVm({ template: "dvm" })).vm!.name;
    await listed(); // every view is now kept
  });

  it("answers, page by page, what GetVm answers for each VM", async () => {
    const all = await listed();
    expect([...all.keys()]).toEqual([disp, "dom0", "dvm", "net", "tpl", "work"].sort());
    for (const [name, vm] of all) expect(vm).toEqual((await vms.getVm({ vm: name })).vm);
  });

  it("shows a VM's own property, tag and feature changes", async () => {
    await vms.setProperty({ vm: "work", name: "vcpus", value: int(6) });
    await vms.addTag({ vm: "work", tag: "project-x" });
    await vms.setFeature({ vm: "work", name: "gui", value: "1" });
    const work = (await listed()).get("work")!;
    expect(valueOf(work, "vcpus")).toBe(6n);
    expect(work.tags).toContain("project-x");
    expect(work.features).toEqual({ gui: "1" });
    await vms.resetProperty({ vm: "work", name: "vcpus" });
    expect(await propertyOf("work", "vcpus")).toBe(2n);
  });

  it("shows a template's change in the VMs that take their defaults from it, through a DispVM's AppVM", async () => {
    await vms.setProperty({ vm: "tpl", name: "memory", value: int(1234) });
    const all = await listed();
    expect(["work", "dvm", disp].map((name) => valueOf(all.get(name), "memory"))).toEqual([1234n, 1234n, 1234n]);
    await vms.setProperty({ vm: "dvm", name: "memory", value: int(555) });
    expect(await propertyOf(disp, "memory")).toBe(555n);
  });

  it("shows a global property's change in every VM that defaults to it", async () => {
    await host.setGlobalProperty({ name: "default_kernel", value: str("6.1.0") });
    const all = await listed();
    expect(["work", "net", "tpl"].map((name) => valueOf(all.get(name), "kernel"))).toEqual(["6.1.0", "6.1.0", "6.1.0"]);
    await host.setGlobalProperty({ name: "default_netvm", value: vmRef("net") });
    expect(await propertyOf("dvm", "netvm")).toBe("net");
  });

  it("shows another VM's new name where a property names it", async () => {
    await vms.renameVm({ vm: "net", newName: "sys-net" });
    const all = await listed();
    expect(valueOf(all.get("work"), "netvm")).toBe("sys-net");
    expect(valueOf(all.get("dvm"), "netvm")).toBe("sys-net");
  });

  it("shows a VM whose encoding grows past the room kept for it, then shrinks", async () => {
    for (const kernelopts of ["x".repeat(300), "short", ""]) {
      await vms.setProperty({ vm: "work", name: "kernelopts", value: str(kernelopts) });
      const all = await listed();
      expect(valueOf(all.get("work"), "kernelopts")).toBe(kernelopts);
      for (const name of ["work", "dvm"]) expect(all.get(name)).toEqual((await vms.getVm({ vm: name })).vm);
    }
  });

  it("shows the power state, start time and runtime as they are now", async () => {
    await vms.startVm({ vm: "work" });
    const running = (await listed()).get("work")!;
    expect(running.state).toBe(PowerState.RUNNING);
    expect(running.runtime?.startTime).toBeDefined();
    expect(valueOf(running, "start_time")).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(running).toEqual((await vms.getVm({ vm: "work" })).vm);

    await vms.shutdownVm({ vm: "work", wait: true });
    const halted = (await listed()).get("work")!;
    expect([halted.state, halted.runtime, valueOf(halted, "start_time")]).toEqual([PowerState.HALTED, undefined, ""]);
  });

  it("answers CreateVm, CreateDisposableVm, CloneVm and RenameVm with the FULL view GetVm gives", async () => {
    const same = async (answered: Vm | undefined) => {
      expect(answered?.properties.length).toBeGreaterThan(0);
      expect(answered).toEqual((await vms.getVm({ vm: answered!.name })).vm);
    };
    await same(createdVm(await vms.createVm({ name: "answered", klass: VmClass.APP_VM, label: "blue", template: "tpl", properties: { vcpus: int(3) } })));
    await vms.setFeature({ vm: "answered", name: "gui", value: "1" });
    const cloned = clonedVm(await vms.cloneVm({ vm: "answered", newName: "answered-copy" }));
    expect(cloned?.features).toEqual({ gui: "1" });
    await same(cloned);
    await same((await vms.renameVm({ vm: "answered-copy", newName: "answered-renamed" })).vm);
    await vms.setFeature({ vm: "dvm", name: "gui", value: "1" });
    const disposable = (await vms.createDisposableVm({ template: "dvm" })).vm;
    expect(disposable?.features).toEqual({ gui: "1" });
    await same(disposable);
    for (const name of ["answered", "answered-renamed", disposable!.name]) await vms.removeVm({ vm: name });
    await vms.removeFeature({ vm: "dvm", name: "gui" });
  });

  it("drops a removed VM and shows a new one that takes its place", async () => {
    await vms.removeVm({ vm: disp });
    await vms.createVm({ name: disp, klass: VmClass.STANDALONE_VM, label: "green" });
    const successor = (await listed()).get(disp)!;
    expect([successor.klass, successor.label, successor.template]).toEqual([VmClass.STANDALONE_VM, "green", ""]);
    expect(successor).toEqual((await vms.getVm({ vm: disp })).vm);
  });

  it("answers pages asked for at the same time, again and again, each with its own VMs", async () => {
    const expected = await listed();
    const pageSizes = [1, 2, 3, 6];
    for (let round = 0; round < 3; round++) {
      const pages = await Promise.all(pageSizes.flatMap((pageSize) => [vms.listVms({ view: VmView.FULL, pageSize }), vms.listVms({ view: VmView.FULL, pageSize })]));
      pages.forEach((page, i) => {
        const pageSize = pageSizes[Math.floor(i / 2)];
        expect(page.vms.map((vm) => vm.name)).toEqual([...expected.keys()].slice(0, pageSize));
        for (const vm of page.vms) expect(vm).toEqual(expected.get(vm.name));
      });
    }
  });
});
