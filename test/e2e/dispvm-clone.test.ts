import * as grpc from "@grpc/grpc-js";
import { PowerState, VmClass } from "../../gen/steward/v1/vm_pb";
import { rpcError } from "../fixtures/expect-rpc-error";
import { bool, int, str, vmRef } from "../fixtures/property-values";
import { serverForSuite, type ServerWithClients } from "../fixtures/server-with-clients";
import { clonedVm } from "../fixtures/made-vms";


describe("DispVMs and clones", () => {
  const suite = serverForSuite();
  let vms: ServerWithClients["vms"];
  let host: ServerWithClients["host"];
  beforeAll(async () => {
    ({ vms, host } = suite);
    await vms.createVm({ name: "tpl", klass: VmClass.TEMPLATE_VM, label: "black", properties: { memory: int(800) } });
    await vms.createVm({ name: "dvm", klass: VmClass.APP_VM, label: "red", template: "tpl", properties: { template_for_dispvms: bool(true) } });
    await vms.createVm({ name: "plain", klass: VmClass.APP_VM, label: "red", template: "tpl" });
  });

  it("makes a DispVM from an AppVM with template_for_dispvms, and removes it when it halts", async () => {
    const { vm } = await vms.createDisposableVm({ template: "dvm" });
    expect(vm).toMatchObject({ klass: VmClass.DISP_VM, template: "dvm", label: "red" });
    const name = vm!.name;
    expect(vm!.tags).toContain("created-by-dom0");
    const memory = (await vms.getProperty({ vm: name, name: "memory" })).property!;
    expect(memory.value!.kind.value).toBe(800n); // through dvm from tpl
    expect((await vms.getProperty({ vm: name, name: "auto_cleanup" })).property!.value!.kind.value).toBe(true);
    expect((await rpcError(vms.removeVm({ vm: "dvm" }))).details).toContain(`${name} (template)`);

    await vms.startVm({ vm: name });
    await vms.shutdownVm({ vm: name, wait: true });
    expect((await rpcError(vms.getVm({ vm: name }))).code).toBe(grpc.status.NOT_FOUND);
  });

  it("makes DispVMs as copies of their AppVM: netvm, label, features, tags, default_dispvm", async () => {
    const value = async (vm: string, name: string) => (await vms.getProperty({ vm, name })).property!;
    await vms.createVm({ name: "copy-net", klass: VmClass.STANDALONE_VM, label: "red", properties: { provides_network: bool(true) } });
    await vms.createVm({
      name: "copy-dvm",
      klass: VmClass.APP_VM,
      label: "purple",
      template: "tpl",
      properties: { template_for_dispvms: bool(true), netvm: vmRef("copy-net"), vcpus: int(3), default_dispvm: vmRef("dvm") },
    });
    await vms.setFeature({ vm: "copy-dvm", name: "gui", value: "1" });
    await vms.addTag({ vm: "copy-dvm", tag: "project-x" });
    const { vm } = await vms.createDisposableVm({ template: "copy-dvm" });
    const name = vm!.name;
    expect([vm!.label, vm!.template, vm!.features, [...vm!.tags].sort()]).toEqual(["purple", "copy-dvm", { gui: "1" }, ["created-by-dom0", "project-x"]]);
    expect([(await value(name, "netvm")).value!.kind.value, (await value(name, "vcpus")).value!.kind.value]).toEqual(["copy-net", 3n]);
    expect((await value(name, "default_dispvm")).value!.kind.value).toBe("dvm");
    // Unless the AppVM names another, a DispVM's own DispVMs are based on its AppVM.
    await vms.resetProperty({ vm: "copy-dvm", name: "default_dispvm" });
    const second = (await vms.createDisposableVm({ template: "copy-dvm" })).vm!.name;
    const ownDefault = await value(second, "default_dispvm");
    expect([ownDefault.value!.kind.value, ownDefault.isDefault]).toEqual(["copy-dvm", true]);
    // Auto-cleanup DispVMs are not backed up; the one kept is.
    expect((await value(second, "include_in_backups")).value!.kind.value).toBe(false);
    await vms.setProperty({ vm: second, name: "auto_cleanup", value: bool(false) });
    expect((await value(second, "include_in_backups")).value!.kind.value).toBe(true);
    for (const disp of [name, second]) await vms.removeVm({ vm: disp });
  });

  it("makes an offline DispVM from an offline AppVM, whether set none or none by default", async () => {
    const netvmOf = async (vm: string) => (await vms.getProperty({ vm, name: "netvm" })).property!.value!.kind.value;
    await vms.createVm({ name: "off-net", klass: VmClass.STANDALONE_VM, label: "red", properties: { provides_network: bool(true) } });
    await vms.createVm({ name: "off-dvm", klass: VmClass.APP_VM, label: "red", template: "tpl", properties: { template_for_dispvms: bool(true), netvm: vmRef("") } });
    await host.setGlobalProperty({ name: "default_netvm", value: vmRef("off-net") });
    try {
      const explicit = (await vms.createDisposableVm({ template: "off-dvm" })).vm!.name;
      expect(await netvmOf(explicit)).toBe(""); // none
      // The default netvm makes the AppVM online: so is its DispVM, by the same default.
      await vms.resetProperty({ vm: "off-dvm", name: "netvm" });
      const online = (await vms.createDisposableVm({ template: "off-dvm" })).vm!.name;
      expect(await netvmOf(online)).toBe("off-net");
      for (const disp of [explicit, online]) await vms.removeVm({ vm: disp });
    } finally {
      await host.resetGlobalProperty({ name: "default_netvm" });
    }
  });

  it("names a DispVM disp<dispid>, with its addresses from Qubes' DispVM range, and never reuses a name the log retains", async () => {
    await vms.createVm({ name: "id-net", klass: VmClass.STANDALONE_VM, label: "red", properties: { provides_network: bool(true) } });
    await vms.createVm({ name: "id-dvm", klass: VmClass.APP_VM, label: "red", template: "tpl", properties: { template_for_dispvms: bool(true), netvm: vmRef("id-net") } });
    await vms.setFeature({ vm: "id-net", name: "ipv6", value: "1" });
    const names = new Set<string>();
    for (let round = 0; round < 40; round++) {
      const { vm } = await vms.createDisposableVm({ template: "id-dvm" });
      const dispid = Number((await vms.getProperty({ vm: vm!.name, name: "dispid" })).property!.value!.kind.value);
      expect(vm!.name).toBe(`disp${dispid}`);
      expect(dispid).toBeGreaterThanOrEqual(1);
      expect(dispid).toBeLessThan(10000);
      const ip = (await vms.getProperty({ vm: vm!.name, name: "ip" })).property!.value!.kind.value;
      const ip6 = (await vms.getProperty({ vm: vm!.name, name: "ip6" })).property!.value!.kind.value;
      expect([ip, ip6]).toEqual([`10.138.${dispid >> 8}.${dispid & 0xff}`, `fd09:24ef:4179::a8a:${dispid.toString(16)}`]);
      if (round === 0) {
        const taken = await rpcError(vms.setProperty({ vm: "id-net", name: "ip", value: str(ip as string) }));
        expect([taken.code, taken.info?.reason, taken.info?.metadata.vm]).toEqual([grpc.status.ALREADY_EXISTS, "ADDRESS_IN_USE", vm!.name]);
      }
      const refused = await rpcError(vms.setProperty({ vm: vm!.name, name: "dispid", value: int(1) }));
      expect([refused.code, refused.info?.reason]).toEqual([grpc.status.FAILED_PRECONDITION, "PROPERTY_READ_ONLY"]);
      names.add(vm!.name);
      await vms.removeVm({ vm: vm!.name });
    }
    expect(names.size).toBe(40);
  });

  it("keeps a DispVM without auto_cleanup once halted", async () => {
    const { vm } = await vms.createDisposableVm({ template: "dvm", label: "green" });
    expect(vm!.label).toBe("green");
    await vms.setProperty({ vm: vm!.name, name: "auto_cleanup", value: bool(false) });
    await vms.startVm({ vm: vm!.name });
    await vms.killVm({ vm: vm!.name });
    expect((await vms.getVm({ vm: vm!.name })).vm!.state).toBe(PowerState.HALTED);
    await vms.removeVm({ vm: vm!.name });
  });

  it("keeps a DispVM that another VM uses as its netvm, instead of failing when it halts", async () => {
    const { vm: disp } = await vms.createDisposableVm({ template: "dvm" });
    await vms.setProperty({ vm: disp!.name, name: "provides_network", value: bool(true) });
    await vms.createVm({ name: "behind-disp", klass: VmClass.STANDALONE_VM, label: "red", properties: { netvm: vmRef(disp!.name) } });
    await vms.startVm({ vm: disp!.name });
    await vms.killVm({ vm: disp!.name });
    expect((await vms.getVm({ vm: disp!.name })).vm!.state).toBe(PowerState.HALTED);
    await vms.removeVm({ vm: "behind-disp" });
    await vms.removeVm({ vm: disp!.name });
  });

  it("refuses an AppVM that is not a DispVM template, and uses default_dispvm when none is named", async () => {
    expect((await rpcError(vms.createDisposableVm({ template: "plain" }))).info?.reason).toBe("NOT_A_DISPVM_TEMPLATE");
    expect((await rpcError(vms.createDisposableVm({}))).info?.reason).toBe("NO_DEFAULT_DISPVM");
    await host.setGlobalProperty({ name: "default_dispvm", value: vmRef("dvm") });
    const { vm } = await vms.createDisposableVm({ requestId: "1b4e28ba-2fa1-41d2-883f-0016d3cca427" });
    expect(vm!.template).toBe("dvm");
    expect((await vms.createDisposableVm({ requestId: "1b4e28ba-2fa1-41d2-883f-0016d3cca427" })).vm!.uuid).toBe(vm!.uuid);
    await vms.removeVm({ vm: vm!.name });
    await host.resetGlobalProperty({ name: "default_dispvm" });
  });

  it("clones a halted VM with its properties, features, tags and notes, but new addresses", async () => {
    await vms.setProperty({ vm: "plain", name: "vcpus", value: int(3) });
    await vms.setFeature({ vm: "plain", name: "gui", value: "1" });
    await vms.addTag({ vm: "plain", tag: "work" });
    await vms.setNotes({ vm: "plain", notes: "copied" });
    const vm = clonedVm(await vms.cloneVm({ vm: "plain", newName: "plain-copy" }));
    expect(vm).toMatchObject({ name: "plain-copy", klass: VmClass.APP_VM, template: "tpl", label: "red" });
    expect(vm!.uuid).not.toBe((await vms.getVm({ vm: "plain" })).vm!.uuid);
    expect((await vms.getProperty({ vm: "plain-copy", name: "vcpus" })).property!.value!.kind.value).toBe(3n);
    expect((await vms.getFeature({ vm: "plain-copy", name: "gui" })).value).toBe("1");
    expect((await vms.listTags({ vm: "plain-copy" })).tags).toEqual(["created-by-dom0", "work"]);
    expect((await vms.getNotes({ vm: "plain-copy" })).notes).toBe("copied");
    // Without a netvm neither has an IP address; the MAC address shows the clone's own qid.
    const macOf = async (name: string) => (await vms.getProperty({ vm: name, name: "mac" })).property!.value!.kind.value;
    expect(await macOf("plain-copy")).not.toBe(await macOf("plain"));
  });

  it("clones into another class, and refuses a running source, a taken name and dom0", async () => {
    const vm = clonedVm(await vms.cloneVm({ vm: "plain", newName: "standalone-copy", klass: VmClass.STANDALONE_VM }));
    expect(vm).toMatchObject({ klass: VmClass.STANDALONE_VM, template: "" });
    expect((await rpcError(vms.cloneVm({ vm: "plain", newName: "plain-copy" }))).info?.reason).toBe("VM_EXISTS");
    expect((await rpcError(vms.cloneVm({ vm: "dom0", newName: "dom1" }))).info?.reason).toBe("VM_IS_ADMIN");
    await vms.startVm({ vm: "plain" });
    expect((await rpcError(vms.cloneVm({ vm: "plain", newName: "hot-copy" }))).info?.reason).toBe("VM_NOT_HALTED");
    await vms.killVm({ vm: "plain" });
  });
});

describe("templates and DispVM bases", () => {
  const suite = serverForSuite();
  const str = (value: string) => ({ kind: { case: "vmValue" as const, value } });

  it("stay coherent by any route: a reset, the global default, template_for_dispvms, a running DispVM", async () => {
    const { vms, host } = suite;
    await vms.createVm({ name: "tpl-a", klass: VmClass.TEMPLATE_VM, label: "black" });
    await vms.createVm({ name: "tpl-b", klass: VmClass.TEMPLATE_VM, label: "black" });
    await vms.createVm({ name: "base", klass: VmClass.APP_VM, label: "red", template: "tpl-a", properties: { template_for_dispvms: bool(true) } });
    const { vm: disp } = await vms.createDisposableVm({ template: "base" });
    const reason = async (call: Promise<unknown>) => {
      const error = await rpcError(call);
      return [error.code, error.info?.reason];
    };
    const refused = (why: string) => [grpc.status.FAILED_PRECONDITION, why];

    // A DispVM's template is its AppVM: the default (a TemplateVM, or none) would not do.
    expect(await reason(vms.resetProperty({ vm: disp!.name, name: "template" }))).toEqual(refused("NO_TEMPLATE"));
    await host.setGlobalProperty({ name: "default_template", value: str("tpl-a") });
    expect(await reason(vms.resetProperty({ vm: disp!.name, name: "template" }))).toEqual(refused("NOT_A_DISPVM_TEMPLATE"));
    // An AppVM that takes the default keeps having a template.
    await vms.resetProperty({ vm: "base", name: "template" });
    expect(await reason(host.resetGlobalProperty({ name: "default_template" }))).toEqual(refused("NO_TEMPLATE"));
    expect((await vms.getVm({ vm: "base" })).vm!.template).toBe("tpl-a");

    // The AppVM keeps template_for_dispvms while DispVMs are based on it.
    expect(await reason(vms.setProperty({ vm: "base", name: "template_for_dispvms", value: bool(false) }))).toEqual(refused("DISPVM_TEMPLATE_IN_USE"));
    // Nor once no VM names it as its default_dispvm, nor by a reset to its default (false).
    await vms.setProperty({ vm: disp!.name, name: "default_dispvm", value: vmRef("") });
    for (const call of [
      () => vms.setProperty({ vm: "base", name: "template_for_dispvms", value: bool(false) }),
      () => vms.resetProperty({ vm: "base", name: "template_for_dispvms" }),
    ]) {
      const error = await rpcError(call());
      expect([error.code, error.info?.reason, error.info?.metadata.used_by]).toEqual([grpc.status.FAILED_PRECONDITION, "DISPVM_TEMPLATE_IN_USE", disp!.name]);
      expect(error.details).toContain("is the AppVM of the DispVMs");
    }
    // Its template does not change under a DispVM of it that runs, by SetProperty or by way of
    // the global default it takes.
    await vms.startVm({ vm: disp!.name });
    expect(await reason(vms.setProperty({ vm: "base", name: "template", value: str("tpl-b") }))).toEqual(refused("DISPVMS_RUNNING"));
    expect(await reason(host.setGlobalProperty({ name: "default_template", value: str("tpl-b") }))).toEqual(refused("DISPVMS_RUNNING"));
    // Nor does a running VM's (a template changes only while its VM is halted).
    await vms.killVm({ vm: disp!.name });
    await vms.startVm({ vm: "base" });
    expect(await reason(host.setGlobalProperty({ name: "default_template", value: str("tpl-b") }))).toEqual(refused("VM_NOT_HALTED"));
    await vms.killVm({ vm: "base" });
    expect((await vms.getVm({ vm: "base" })).vm!.template).toBe("tpl-a");
    await vms.setProperty({ vm: "base", name: "template", value: str("tpl-b") });
    expect((await vms.getVm({ vm: "base" })).vm!.template).toBe("tpl-b");
  });
});
