import * as grpc from "@grpc/grpc-js";
import { HostService } from "../../gen/steward/v1/host_service_pb";
import { DefaultSource, PropertyType, WriteRule, type PropertyValue } from "../../gen/steward/v1/property_pb";
import { PowerState, VmClass, VmView } from "../../gen/steward/v1/vm_pb";
import { VmService } from "../../gen/steward/v1/vm_service_pb";
import { createClient } from "../../src/client/steward-client";
import { rpcError } from "../fixtures/expect-rpc-error";
import { stopAndReadEvents } from "../fixtures/stored-events";
import { bool, int, str, vmRef } from "../fixtures/property-values";
import { serverForSuite, type ServerWithClients } from "../fixtures/server-with-clients";
import { startTestServer } from "../fixtures/test-server";
import { createdVm } from "../fixtures/made-vms";

const vm = vmRef;
const plain = (value: PropertyValue | undefined) => value?.kind.value;

describe("VM properties", () => {
  const suite = serverForSuite();
  let vms: ServerWithClients["vms"];
  beforeAll(async () => {
    vms = suite.vms;
    await vms.createVm({ name: "tpl", klass: VmClass.TEMPLATE_VM, label: "black", properties: { memory: int(1024), vcpus: int(4) } });
    await vms.createVm({ name: "work", klass: VmClass.APP_VM, label: "blue", template: "tpl" });
  });

  it("lists every property with its type, value and whether it is the default", async () => {
    const { properties } = await vms.listProperties({ vm: "work" });
    const byName = new Map(properties.map((p) => [p.name, p]));
    for (const name of ["name", "uuid", "qid", "label", "template", "netvm", "provides_network", "ip", "ip6", "mac", "memory", "maxmem", "vcpus", "kernel", "kernelopts", "virt_mode", "autostart", "debug", "include_in_backups", "qrexec_timeout", "shutdown_timeout", "default_dispvm", "template_for_dispvms", "default_user", "start_time", "klass"]) {
      expect([name, byName.has(name)]).toEqual([name, true]);
    }
    expect(byName.get("auto_cleanup")).toBeUndefined(); // DispVMs only
    expect(byName.get("memory")).toMatchObject({ type: PropertyType.INT, isDefault: true });
    expect(plain(byName.get("memory")!.value)).toBe(1024n); // from the template
    expect(plain(byName.get("vcpus")!.value)).toBe(4n);
    expect(byName.get("label")).toMatchObject({ type: PropertyType.LABEL, isDefault: false });
    expect(byName.get("template")).toMatchObject({ type: PropertyType.VM, isDefault: false });
    expect(plain(byName.get("template")!.value)).toBe("tpl");
    expect(plain(byName.get("qrexec_timeout")!.value)).toBe(60n); // from default_qrexec_timeout
    expect(plain(byName.get("netvm")!.value)).toBe(""); // default_netvm is not set
    expect(plain(byName.get("start_time")!.value)).toBe("");
  });

  it("sets, gets and resets a property, with events", async () => {
    const set = (await vms.setProperty({ vm: "work", name: "memory", value: int(2048) })).property!;
    expect(set).toMatchObject({ name: "memory", isDefault: false });
    expect(plain(set.value)).toBe(2048n);
    expect(plain((await vms.getProperty({ vm: "work", name: "memory" })).property!.value)).toBe(2048n);
    const reset = (await vms.resetProperty({ vm: "work", name: "memory" })).property!;
    expect(reset.isDefault).toBe(true);
    expect(plain(reset.value)).toBe(1024n);
    // The template's value changes the AppVM's default.
    await vms.setProperty({ vm: "tpl", name: "memory", value: int(1500) });
    expect(plain((await vms.getProperty({ vm: "work", name: "memory" })).property!.value)).toBe(1500n);
  });

  it("checks type, range, choices and write rules, naming the field", async () => {
    const wrongType = await rpcError(vms.setProperty({ vm: "work", name: "memory", value: str("lots") }));
    expect(wrongType.info).toMatchObject({ reason: "PROPERTY_TYPE_MISMATCH", metadata: { field: "value" } });
    expect((await rpcError(vms.setProperty({ vm: "work", name: "memory", value: int(0) }))).info?.reason).toBe("PROPERTY_OUT_OF_RANGE");
    expect((await rpcError(vms.setProperty({ vm: "work", name: "virt_mode", value: str("xen") }))).info?.reason).toBe("PROPERTY_OUT_OF_RANGE");
    expect((await rpcError(vms.setProperty({ vm: "work", name: "memory" }))).code).toBe(grpc.status.INVALID_ARGUMENT);
    const readOnly = await rpcError(vms.setProperty({ vm: "work", name: "qid", value: int(99) }));
    expect(readOnly.info).toMatchObject({ reason: "PROPERTY_READ_ONLY", metadata: { property: "qid" } });
    expect((await rpcError(vms.setProperty({ vm: "work", name: "name", value: str("x") }))).details).toContain("RenameVm");
    expect((await rpcError(vms.getProperty({ vm: "work", name: "colour" }))).info?.reason).toBe("PROPERTY_NOT_FOUND");
    expect((await rpcError(vms.resetProperty({ vm: "work", name: "label" }))).info?.reason).toBe("PROPERTY_NO_DEFAULT");
    expect((await rpcError(vms.setProperty({ vm: "work", name: "label", value: { kind: { case: "labelValue", value: "mauve" } } }))).info?.reason).toBe(
      "LABEL_NOT_FOUND",
    );
  });

  it("describes a property: type, help, default and where it comes from", async () => {
    const memory = (await vms.describeProperty({ vm: "work", name: "memory" })).description!;
    expect(memory).toMatchObject({ type: PropertyType.INT, defaultSource: DefaultSource.TEMPLATE, defaultFrom: "tpl", writeRule: WriteRule.ANYTIME, minValue: 1n });
    expect(memory.help).toMatch(/MiB/);
    const timeout = (await vms.describeProperty({ vm: "work", name: "shutdown_timeout" })).description!;
    expect(timeout).toMatchObject({ defaultSource: DefaultSource.GLOBAL, defaultFrom: "default_shutdown_timeout" });
    expect((await vms.describeProperty({ vm: "tpl", name: "memory" })).description).toMatchObject({ defaultSource: DefaultSource.CONSTANT });
    expect((await vms.describeProperty({ vm: "work", name: "uuid" })).description).toMatchObject({ writeRule: WriteRule.READ_ONLY, defaultSource: DefaultSource.COMPUTED });
  });

  it("describes the values a property accepts and its long help (Qubes' HelpRst)", async () => {
    const virtMode = (await vms.describeProperty({ vm: "work", name: "virt_mode" })).description!;
    expect(virtMode).toMatchObject({ allowedValues: ["hvm", "pvh", "pv"], maxLength: 256, format: "" });
    expect(virtMode.helpRst.split("\n").slice(0, 2)).toEqual(["virt_mode", "========="]);
    expect(virtMode.helpRst).toContain(":values: ``hvm``, ``pvh``, ``pv``");
    expect(virtMode.helpRst).toContain(":set: while the VM is halted");
    const kernelopts = (await vms.describeProperty({ vm: "work", name: "kernelopts" })).description!;
    expect(kernelopts.maxLength).toBe(512);
    const kernel = (await vms.describeProperty({ vm: "work", name: "kernel" })).description!;
    expect(kernel.format).toMatch(/without '\/' or '\.\.'/);
    const memory = (await vms.describeProperty({ vm: "work", name: "memory" })).description!;
    expect([memory.maxLength, memory.allowedValues]).toEqual([0, []]);
    expect(memory.helpRst).toContain(":default: the template's, else ``400``");
  });

  it("allocates ip and mac from the qid, and keeps them unique", async () => {
    // A VM has an IP address only with a netvm, as in Qubes.
    await vms.createVm({ name: "addr-net", klass: VmClass.STANDALONE_VM, label: "red", properties: { provides_network: bool(true) } });
    const networked = { netvm: vmRef("addr-net") };
    const a = createdVm(await vms.createVm({ name: "addr-a", klass: VmClass.STANDALONE_VM, label: "red", properties: networked }));
    const ip = plain((await vms.getProperty({ vm: "addr-a", name: "ip" })).property!.value);
    const mac = plain((await vms.getProperty({ vm: "addr-a", name: "mac" })).property!.value);
    expect(ip).toBe(`10.137.0.${a!.qid}`);
    expect(mac).toBe(`00:16:3e:5e:00:${a!.qid.toString(16).padStart(2, "0")}`);
    await vms.createVm({ name: "addr-b", klass: VmClass.STANDALONE_VM, label: "red", properties: networked });
    const taken = await rpcError(vms.setProperty({ vm: "addr-b", name: "ip", value: str(ip as string) }));
    expect(taken.info).toMatchObject({ reason: "ADDRESS_IN_USE", metadata: { vm: "addr-a" } });
    expect((await rpcError(vms.setProperty({ vm: "addr-b", name: "ip", value: str("10.1.2") }))).info?.reason).toBe("INVALID_ADDRESS");
    await vms.setProperty({ vm: "addr-b", name: "ip", value: str("10.137.9.9") });
  });

  it("gives no IP address without a netvm, IPv6 only with the ipv6 feature, and no default that another VM set", async () => {
    const value = async (vm: string, name: string) => plain((await vms.getProperty({ vm, name })).property!.value);
    await vms.createVm({ name: "v6-net", klass: VmClass.STANDALONE_VM, label: "red", properties: { provides_network: bool(true) } });
    await vms.createVm({ name: "v6-offline", klass: VmClass.STANDALONE_VM, label: "red" });
    expect([await value("v6-offline", "ip"), await value("v6-offline", "ip6")]).toEqual(["", ""]);
    const online = createdVm(await vms.createVm({ name: "v6-online", klass: VmClass.STANDALONE_VM, label: "red", properties: { netvm: vmRef("v6-net") } }));
    expect(await value("v6-online", "ip")).toBe(`10.137.0.${online!.qid}`);
    expect(await value("v6-online", "ip6")).toBe("");
    // The ipv6 feature on the netvm (Qubes' check_with_netvm) gives its users IPv6.
    await vms.setFeature({ vm: "v6-net", name: "ipv6", value: "1" });
    expect(await value("v6-online", "ip6")).toBe(`fd09:24ef:4179::a89:${online!.qid.toString(16)}`);

    // An address set to what the next VM would get by default: that VM gets another qid.
    const next = online!.qid + 1;
    await vms.setProperty({ vm: "v6-offline", name: "ip", value: str(`10.137.0.${next}`) });
    const later = createdVm(await vms.createVm({ name: "v6-later", klass: VmClass.STANDALONE_VM, label: "red", properties: { netvm: vmRef("v6-net") } }));
    expect(later!.qid).not.toBe(next);
    expect(await value("v6-later", "ip")).not.toBe(`10.137.0.${next}`);

    // A VM without a netvm keeps the address its qid gives: no other VM may take it, so it
    // cannot collide once the VM gets a netvm.
    const offline = createdVm(await vms.createVm({ name: "v6-spare", klass: VmClass.STANDALONE_VM, label: "red" }));
    const reserved = await rpcError(vms.setProperty({ vm: "v6-later", name: "ip", value: str(`10.137.0.${offline!.qid}`) }));
    expect([reserved.code, reserved.info?.reason, reserved.info?.metadata.vm]).toEqual([grpc.status.ALREADY_EXISTS, "ADDRESS_IN_USE", "v6-spare"]);
    // IPv6 addresses are compared, and kept, in their canonical form.
    await vms.setProperty({ vm: "v6-later", name: "ip6", value: str("FD00:0:0::0A") });
    expect(await value("v6-later", "ip6")).toBe("fd00::a");
    const sameV6 = await rpcError(vms.setProperty({ vm: "v6-spare", name: "ip6", value: str("fd00::0:a") }));
    expect(sameV6.info?.reason).toBe("ADDRESS_IN_USE");
  });

  it("keeps memory within maxmem, by any write: its own, its template's, a clone into another class", async () => {
    const over = async (call: Promise<unknown>) => {
      const error = await rpcError(call);
      expect([error.code, error.info?.reason]).toEqual([grpc.status.FAILED_PRECONDITION, "MEMORY_OVER_MAXMEM"]);
    };
    await over(vms.createVm({ name: "mem-new", klass: VmClass.STANDALONE_VM, label: "red", properties: { memory: int(5000) } }));
    // Both given at once, memory the greater: a bad combination of the request's fields.
    const both = await rpcError(vms.createVm({ name: "mem-new", klass: VmClass.STANDALONE_VM, label: "red", properties: { memory: int(3000), maxmem: int(2000) } }));
    expect([both.code, both.info?.reason, both.info?.metadata.field]).toEqual([grpc.status.INVALID_ARGUMENT, "MEMORY_OVER_MAXMEM", "properties[memory]"]);
    await vms.createVm({ name: "mem-tpl", klass: VmClass.TEMPLATE_VM, label: "black", properties: { memory: int(1000) } });
    await vms.createVm({ name: "mem-app", klass: VmClass.APP_VM, label: "red", template: "mem-tpl", properties: { maxmem: int(2000) } });
    await over(vms.setProperty({ vm: "mem-app", name: "memory", value: int(2001) }));
    await vms.setProperty({ vm: "mem-app", name: "memory", value: int(2000) });
    await over(vms.setProperty({ vm: "mem-app", name: "maxmem", value: int(1999) }));
    // maxmem 0 turns balancing off: it bounds nothing.
    await vms.setProperty({ vm: "mem-app", name: "maxmem", value: int(0) });
    await vms.setProperty({ vm: "mem-app", name: "memory", value: int(8000) });
    await over(vms.resetProperty({ vm: "mem-app", name: "maxmem" }));
    await vms.resetProperty({ vm: "mem-app", name: "memory" });
    await vms.setProperty({ vm: "mem-app", name: "maxmem", value: int(2000) });
    // The template's memory is the AppVM's by default: it cannot put it past its maxmem.
    await over(vms.setProperty({ vm: "mem-tpl", name: "memory", value: int(3000) }));
    expect(plain((await vms.getProperty({ vm: "mem-app", name: "memory" })).property!.value)).toBe(1000n);
    // A clone into another class is held to it too: as a StandaloneVM, with no template to take
    // its 250 MiB from, it would start with 400.
    await vms.createVm({ name: "mem-tpl-small", klass: VmClass.TEMPLATE_VM, label: "black", properties: { memory: int(250) } });
    await vms.createVm({ name: "mem-small", klass: VmClass.APP_VM, label: "red", template: "mem-tpl-small", properties: { maxmem: int(300) } });
    await over(vms.cloneVm({ vm: "mem-small", newName: "mem-standalone", klass: VmClass.STANDALONE_VM }));
    // default_template gives its memory to the AppVMs that take it, as their template.
    await vms.createVm({ name: "mem-tpl-big", klass: VmClass.TEMPLATE_VM, label: "black", properties: { memory: int(3000) } });
    await suite.host.setGlobalProperty({ name: "default_template", value: vmRef("mem-tpl") });
    await vms.resetProperty({ vm: "mem-app", name: "template" });
    await over(suite.host.setGlobalProperty({ name: "default_template", value: vmRef("mem-tpl-big") }));
    expect(plain((await vms.getProperty({ vm: "mem-app", name: "memory" })).property!.value)).toBe(1000n);
    await vms.setProperty({ vm: "mem-app", name: "template", value: vmRef("mem-tpl") });
    await suite.host.resetGlobalProperty({ name: "default_template" });
    for (const vm of ["mem-small", "mem-tpl-small", "mem-app", "mem-tpl", "mem-tpl-big"]) await vms.removeVm({ vm });
  });

  it("gives a VM without a netvm no IP address even when one is set, and IPv6 only with the feature", async () => {
    const value = async (vm: string, name: string) => plain((await vms.getProperty({ vm, name })).property!.value);
    await vms.createVm({ name: "set-net", klass: VmClass.STANDALONE_VM, label: "red", properties: { provides_network: bool(true) } });
    await vms.createVm({ name: "set-addr", klass: VmClass.STANDALONE_VM, label: "red", properties: { ip: str("10.200.0.1"), ip6: str("fd00::200:1") } });
    expect([await value("set-addr", "ip"), await value("set-addr", "ip6")]).toEqual(["", ""]);
    await vms.setProperty({ vm: "set-addr", name: "netvm", value: vmRef("set-net") });
    expect([await value("set-addr", "ip"), await value("set-addr", "ip6")]).toEqual(["10.200.0.1", ""]);
    await vms.setFeature({ vm: "set-addr", name: "ipv6", value: "1" });
    expect(await value("set-addr", "ip6")).toBe("fd00::200:1");
    for (const vm of ["set-addr", "set-net"]) await vms.removeVm({ vm });
  });

  it("keeps MAC addresses in lower case, and refuses addresses that are not unicast", async () => {
    await vms.createVm({ name: "mac-vm", klass: VmClass.STANDALONE_VM, label: "red" });
    await vms.setProperty({ vm: "mac-vm", name: "mac", value: str("00:16:3E:AA:BB:CC") });
    expect(plain((await vms.getProperty({ vm: "mac-vm", name: "mac" })).property!.value)).toBe("00:16:3e:aa:bb:cc");
    const refused: [string, string][] = [
      ["ip", "0.0.0.0"],
      ["ip", "255.255.255.255"],
      ["ip", "224.0.0.1"],
      ["ip", "127.0.0.1"],
      ["ip6", "::"],
      ["ip6", "ff02::1"],
      ["ip6", "::1"],
      ["mac", "01:00:5e:00:00:01"],
      ["mac", "00:00:00:00:00:00"],
    ];
    for (const [name, address] of refused) {
      const error = await rpcError(vms.setProperty({ vm: "mac-vm", name, value: str(address) }));
      expect([name, address, error.code, error.info?.reason]).toEqual([name, address, grpc.status.INVALID_ARGUMENT, "INVALID_ADDRESS"]);
    }
  });

  it("lets netvm name only a VM that provides network, never in a loop", async () => {
    await vms.createVm({ name: "sys-net", klass: VmClass.STANDALONE_VM, label: "red", properties: { provides_network: bool(true) } });
    await vms.createVm({ name: "sys-fw", klass: VmClass.STANDALONE_VM, label: "green", properties: { provides_network: bool(true), netvm: vm("sys-net") } });
    await vms.setProperty({ vm: "work", name: "netvm", value: vm("sys-fw") });
    expect(plain((await vms.getProperty({ vm: "work", name: "netvm" })).property!.value)).toBe("sys-fw");
    expect((await rpcError(vms.setProperty({ vm: "work", name: "netvm", value: vm("tpl") }))).info?.reason).toBe("NOT_A_NETVM");
    const loop = await rpcError(vms.setProperty({ vm: "sys-net", name: "netvm", value: vm("sys-fw") }));
    expect([loop.code, loop.info?.reason]).toEqual([grpc.status.FAILED_PRECONDITION, "NETVM_LOOP"]);
    expect(loop.details).toContain("sys-net -> sys-fw -> sys-net");
    expect((await rpcError(vms.setProperty({ vm: "sys-fw", name: "provides_network", value: bool(false) }))).info).toMatchObject({
      reason: "NETVM_IN_USE",
      metadata: { used_by: "work" },
    });
    expect((await rpcError(vms.removeVm({ vm: "sys-fw" }))).info?.reason).toBe("VM_IN_USE");
    await vms.setProperty({ vm: "work", name: "netvm", value: vm("") });
    expect(plain((await vms.getProperty({ vm: "work", name: "netvm" })).property!.value)).toBe("");
  });

  it("returns every VM with all its properties in one ListVms call (FULL view)", async () => {
    const { vms: listed } = await vms.listVms({ view: VmView.FULL, klass: VmClass.APP_VM });
    expect(listed.map((v) => v.name)).toEqual(["work"]);
    expect(listed[0].properties.length).toBeGreaterThan(20);
    expect(plain(listed[0].properties.find((p) => p.name === "memory")!.value)).toBe(1500n);
    expect((await vms.getVm({ vm: "work" })).vm!.properties.length).toBe(listed[0].properties.length);
  });
});

describe("global properties", () => {
  const suite = serverForSuite();
  let vms: ServerWithClients["vms"];
  let host: ServerWithClients["host"];
  beforeAll(() => ({ vms, host } = suite));

  it("lists the globals with their defaults", async () => {
    const { properties } = await host.listGlobalProperties({});
    const names = properties.map((p) => p.name);
    for (const name of [
      "default_template",
      "default_netvm",
      "default_dispvm",
      "default_kernel",
      "default_pool",
      "default_pool_private",
      "default_qrexec_timeout",
      "default_shutdown_timeout",
      "stats_interval",
      "clockvm",
      "updatevm",
      "management_dispvm",
      "check_updates_vm",
    ]) {
      expect(names).toContain(name);
    }
    expect(plain(properties.find((p) => p.name === "default_shutdown_timeout")!.value)).toBe(60n);
    expect(plain(properties.find((p) => p.name === "check_updates_vm")!.value)).toBe(true);
    expect(plain(properties.find((p) => p.name === "updatevm")!.value)).toBe("");
    expect(properties.every((p) => p.isDefault)).toBe(true);
  });

  it("gives defaults to VMs: default_template for new AppVMs, default_netvm for netvm", async () => {
    await vms.createVm({ name: "deb", klass: VmClass.TEMPLATE_VM, label: "black" });
    expect((await rpcError(host.setGlobalProperty({ name: "default_template", value: vm("dom0") }))).info?.reason).toBe("NOT_A_TEMPLATE");
    await host.setGlobalProperty({ name: "default_template", value: vm("deb") });
    const app = createdVm(await vms.createVm({ name: "app", klass: VmClass.APP_VM, label: "red" }));
    expect(app!.template).toBe("deb");

    await vms.createVm({ name: "net", klass: VmClass.STANDALONE_VM, label: "red", properties: { provides_network: bool(true) } });
    expect((await rpcError(host.setGlobalProperty({ name: "default_netvm", value: vm("app") }))).info?.reason).toBe("NOT_A_NETVM");
    await host.setGlobalProperty({ name: "default_netvm", value: vm("net") });
    expect(plain((await vms.getProperty({ vm: "app", name: "netvm" })).property!.value)).toBe("net");
    expect(plain((await vms.getProperty({ vm: "net", name: "netvm" })).property!.value)).toBe(""); // not its own netvm
    expect(plain((await vms.getProperty({ vm: "deb", name: "netvm" })).property!.value)).toBe(""); // templates have none

    await host.setGlobalProperty({ name: "default_shutdown_timeout", value: int(120) });
    expect(plain((await vms.getProperty({ vm: "app", name: "shutdown_timeout" })).property!.value)).toBe(120n);
    expect((await host.getGlobalProperty({ name: "default_shutdown_timeout" })).property).toMatchObject({ isDefault: false });
    expect((await host.resetGlobalProperty({ name: "default_shutdown_timeout" })).property).toMatchObject({ isDefault: true });
  });

  it("keeps a VM that a global names from being removed", async () => {
    const inUse = await rpcError(vms.removeVm({ vm: "net" }));
    expect(inUse.info?.reason).toBe("VM_IN_USE");
    expect(inUse.details).toContain("the global default_netvm");
  });

  it("has Qubes' clockvm, updatevm, management_dispvm and check_updates_vm, with their rules", async () => {
    await vms.createVm({ name: "upd", klass: VmClass.STANDALONE_VM, label: "red" });
    await host.setGlobalProperty({ name: "updatevm", value: vm("upd") });
    await host.setGlobalProperty({ name: "clockvm", value: vm("upd") });
    const named = await rpcError(vms.removeVm({ vm: "upd" }));
    expect([named.info?.reason, named.details]).toEqual(["VM_IN_USE", expect.stringContaining("the global updatevm")]);
    // management_dispvm names an AppVM DispVMs are based on, which must stay one.
    await vms.createVm({ name: "mgmt", klass: VmClass.APP_VM, label: "red", template: "deb" });
    const notOne = await rpcError(host.setGlobalProperty({ name: "management_dispvm", value: vm("mgmt") }));
    expect([notOne.code, notOne.info?.reason]).toEqual([grpc.status.FAILED_PRECONDITION, "NOT_A_DISPVM_TEMPLATE"]);
    await vms.setProperty({ vm: "mgmt", name: "template_for_dispvms", value: bool(true) });
    await host.setGlobalProperty({ name: "management_dispvm", value: vm("mgmt") });
    const stillNamed = await rpcError(vms.setProperty({ vm: "mgmt", name: "template_for_dispvms", value: bool(false) }));
    expect([stillNamed.info?.reason, stillNamed.info?.metadata.used_by]).toEqual(["DISPVM_TEMPLATE_IN_USE", "the global management_dispvm"]);
    await host.setGlobalProperty({ name: "check_updates_vm", value: bool(false) });
    expect(plain((await host.getGlobalProperty({ name: "check_updates_vm" })).property!.value)).toBe(false);
    for (const name of ["updatevm", "clockvm", "management_dispvm", "check_updates_vm"]) await host.resetGlobalProperty({ name });
    await vms.removeVm({ vm: "upd" });
    await vms.removeVm({ vm: "mgmt" });
  });

  it("refuses unknown names and bad values", async () => {
    expect((await rpcError(host.getGlobalProperty({ name: "default_colour" }))).code).toBe(grpc.status.NOT_FOUND);
    expect((await rpcError(host.setGlobalProperty({ name: "stats_interval", value: int(0) }))).info?.reason).toBe("PROPERTY_OUT_OF_RANGE");
    expect((await rpcError(host.setGlobalProperty({ name: "default_pool", value: str("bad pool") }))).info?.reason).toBe("INVALID_POOL_NAME");
    const described = (await host.describeGlobalProperty({ name: "default_pool_private" })).description!;
    expect(described).toMatchObject({ defaultSource: DefaultSource.GLOBAL, defaultFrom: "default_pool" });
  });
});

describe("property events", () => {
  it("tell each set and reset, with new and old values", async () => {
    const server = await startTestServer();
    const vms = createClient(VmService, server.tcp);
    const host = createClient(HostService, server.tcp);
    await vms.createVm({ name: "p", klass: VmClass.STANDALONE_VM, label: "red" });
    await vms.setProperty({ vm: "p", name: "memory", value: int(800) });
    await vms.setProperty({ vm: "p", name: "autostart", value: bool(true) });
    await vms.resetProperty({ vm: "p", name: "memory" });
    await vms.resetProperty({ vm: "p", name: "memory" });
    await host.setGlobalProperty({ name: "stats_interval", value: int(5) });
    vms.close();
    host.close();
    const events = (await stopAndReadEvents(server)).filter((e) => e.name.startsWith("property-"));
    expect(events.map((e) => [e.subject, e.name, e.kwargs])).toEqual([
      ["p", "property-set:memory", { name: "memory", newvalue: "800", oldvalue: "400" }],
      ["p", "property-set:autostart", { name: "autostart", newvalue: "True", oldvalue: "False" }],
      ["p", "property-reset:memory", { name: "memory", oldvalue: "800" }],
      ["", "property-set:stats_interval", { name: "stats_interval", newvalue: "5", oldvalue: "3" }],
    ]);
  });
});

describe("global changes", () => {
  it("tell each VM property they change by way of its default, as Qubes' property-reset", async () => {
    const server = await startTestServer();
    const vms = createClient(VmService, server.tcp);
    const host = createClient(HostService, server.tcp);
    const net = createdVm(await vms.createVm({ name: "g-net", klass: VmClass.STANDALONE_VM, label: "red", properties: { provides_network: bool(true) } }));
    const follower = createdVm(await vms.createVm({ name: "g-app", klass: VmClass.STANDALONE_VM, label: "red" }));
    await vms.createVm({ name: "g-own", klass: VmClass.STANDALONE_VM, label: "red", properties: { netvm: vm(""), kernel: str("own") } });
    await host.setGlobalProperty({ name: "default_netvm", value: vm("g-net") });
    await host.setGlobalProperty({ name: "default_kernel", value: str("6.1") });
    await host.resetGlobalProperty({ name: "default_netvm" });
    vms.close();
    host.close();
    const events = (await stopAndReadEvents(server)).filter((e) => e.name.startsWith("property-"));
    // g-net is default_netvm itself (none for it); g-own sets its netvm and kernel.
    expect(events.map((e) => [e.subject, e.name, e.kwargs])).toEqual([
      ["", "property-set:default_netvm", { name: "default_netvm", newvalue: "g-net", oldvalue: "" }],
      ["g-app", "property-reset:netvm", { name: "netvm", oldvalue: "" }],
      ["g-app", "property-reset:ip", { name: "ip", oldvalue: "" }],
      ["", "property-set:default_kernel", { name: "default_kernel", newvalue: "6.1", oldvalue: "" }],
      ["g-net", "property-reset:kernel", { name: "kernel", oldvalue: "" }],
      ["g-app", "property-reset:kernel", { name: "kernel", oldvalue: "" }],
      ["", "property-reset:default_netvm", { name: "default_netvm", oldvalue: "g-net" }],
      ["g-app", "property-reset:netvm", { name: "netvm", oldvalue: "g-net" }],
      ["g-app", "property-reset:ip", { name: "ip", oldvalue: `10.137.0.${follower!.qid}` }],
    ]);
    expect(net!.qid).toBeLessThan(follower!.qid);
  });
});

describe("netvm loops, by any route", () => {
  const suite = serverForSuite();
  const network = { provides_network: { kind: { case: "boolValue" as const, value: true } } };

  it("are refused when a default would close one: default_netvm set, or a netvm reset to it", async () => {
    const { vms, host } = suite;
    await vms.createVm({ name: "net-a", klass: VmClass.STANDALONE_VM, label: "red", properties: network });
    await vms.createVm({ name: "net-b", klass: VmClass.STANDALONE_VM, label: "red", properties: { ...network, netvm: { kind: { case: "vmValue", value: "net-a" } } } });
    // net-a takes the default: making the default net-b would give net-a -> net-b -> net-a.
    const global = await rpcError(host.setGlobalProperty({ name: "default_netvm", value: { kind: { case: "vmValue", value: "net-b" } } }));
    expect([global.code, global.info?.reason]).toEqual([grpc.status.FAILED_PRECONDITION, "NETVM_LOOP"]);
    expect((await host.getGlobalProperty({ name: "default_netvm" })).property!.isDefault).toBe(true);

    // With net-a's netvm set to none, the default may be net-b; resetting net-a's netvm to that default may not.
    await vms.setProperty({ vm: "net-a", name: "netvm", value: { kind: { case: "vmValue", value: "" } } });
    await host.setGlobalProperty({ name: "default_netvm", value: { kind: { case: "vmValue", value: "net-b" } } });
    const reset = await rpcError(vms.resetProperty({ vm: "net-a", name: "netvm" }));
    expect([reset.code, reset.info?.reason]).toEqual([grpc.status.FAILED_PRECONDITION, "NETVM_LOOP"]);
    expect((await vms.getProperty({ vm: "net-a", name: "netvm" })).property!.isDefault).toBe(false);
    expect((await vms.startVm({ vm: "net-a" })).state).toBe(PowerState.RUNNING);
    await host.resetGlobalProperty({ name: "default_netvm" });
  });
});
