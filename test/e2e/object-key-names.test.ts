import * as grpc from "@grpc/grpc-js";
import { EventService } from "../../gen/steward/v1/event_service_pb";
import { VmClass, VmView } from "../../gen/steward/v1/vm_pb";
import { createClient } from "../../src/client/steward-client";
import { rpcError } from "../fixtures/expect-rpc-error";
import { serverForSuite } from "../fixtures/server-with-clients";
import { createdVm } from "../fixtures/made-vms";

/** Names that are keys every JavaScript object has, or sets its prototype with. */
const OBJECT_KEYS = ["constructor", "toString", "__proto__", "valueOf", "hasOwnProperty", "__defineGetter__"];

/** Text from requests that becomes a key behaves as any other text does. */
describe("names that are JavaScript object keys", () => {
  const suite = serverForSuite();
  beforeAll(async () => {
    await suite.vms.createVm({ name: "keys", klass: VmClass.STANDALONE_VM, label: "red" });
  });

  it.each(OBJECT_KEYS)("are features like any other: %s", async (name) => {
    const { vms } = suite;
    const never = await rpcError(vms.getFeature({ vm: "keys", name }));
    expect([never.code, never.info?.reason]).toEqual([grpc.status.NOT_FOUND, "FEATURE_NOT_FOUND"]);
    expect((await vms.checkFeature({ vm: "keys", name })).found).toBe(false);
    expect(Object.hasOwn((await vms.listFeatures({ vm: "keys" })).features, name)).toBe(false);

    await vms.setFeature({ vm: "keys", name, value: `value of ${name}` });
    expect((await vms.getFeature({ vm: "keys", name })).value).toBe(`value of ${name}`);
    expect((await vms.checkFeature({ vm: "keys", name })).value).toBe(`value of ${name}`);
    expect(Object.entries((await vms.listFeatures({ vm: "keys" })).features)).toContainEqual([name, `value of ${name}`]);
    const { vm } = await vms.getVm({ vm: "keys" });
    expect(Object.entries(vm!.features)).toContainEqual([name, `value of ${name}`]);
    const full = (await vms.listVms({ view: VmView.FULL })).vms.find((v) => v.name === "keys")!;
    expect(Object.entries(full.features)).toContainEqual([name, `value of ${name}`]);

    await vms.removeFeature({ vm: "keys", name });
    expect((await rpcError(vms.getFeature({ vm: "keys", name }))).code).toBe(grpc.status.NOT_FOUND);
  });

  it.each(OBJECT_KEYS)("are properties that do not exist, and tags and labels like any other: %s", async (name) => {
    const { vms, host } = suite;
    expect((await rpcError(vms.getProperty({ vm: "keys", name }))).info?.reason).toBe("PROPERTY_NOT_FOUND");
    expect((await rpcError(host.getGlobalProperty({ name }))).info?.reason).toBe("PROPERTY_NOT_FOUND");
    const atCreation = await rpcError(vms.createVm({ name: `p${OBJECT_KEYS.indexOf(name)}`, klass: VmClass.STANDALONE_VM, label: "red", properties: { [name]: { kind: { case: "strValue", value: "x" } } } }));
    expect([atCreation.code, atCreation.info?.reason]).toEqual([grpc.status.NOT_FOUND, "PROPERTY_NOT_FOUND"]);
    const label = await rpcError(host.getLabel({ name }));
    expect([label.code, label.info?.reason]).toEqual([grpc.status.NOT_FOUND, "LABEL_NOT_FOUND"]);
    if (/^[a-z][a-z0-9_-]*$/.test(name)) {
      // A label name: made, it reads back and labels a VM.
      await host.createLabel({ name, color: "0x123456" });
      expect((await host.getLabel({ name })).label?.color).toBe("0x123456");
      const vm = createdVm(await vms.createVm({ name: `l${OBJECT_KEYS.indexOf(name)}`, klass: VmClass.STANDALONE_VM, label: name }));
      expect(vm?.label).toBe(name);
      await vms.removeVm({ vm: vm!.name });
      await host.removeLabel({ name });
    }
    if (/^[A-Za-z0-9_.:-]+$/.test(name)) {
      await vms.addTag({ vm: "keys", tag: name });
      expect((await vms.hasTag({ vm: "keys", tag: name })).present).toBe(true);
      await vms.removeTag({ vm: "keys", tag: name });
    }
  });

  it("tell the same events live and replayed", async () => {
    const { vms, server } = suite;
    const events = createClient(EventService, server.tcp);
    const live: { name: string; kwargs: Record<string, string> }[] = [];
    let since = 0n;
    const following = (async () => {
      for await (const response of events.events({ vm: "keys", namePrefixes: ["domain-feature-"] })) {
        if (response.kind.case !== "event") continue;
        if (response.kind.value.name === "connection-established") {
          since = response.kind.value.sequence;
          continue;
        }
        live.push({ name: response.kind.value.name, kwargs: { ...response.kind.value.kwargs } });
        if (live.length === 2) break;
      }
    })();
    while (since === 0n) await new Promise((resolve) => setTimeout(resolve, 5));
    await vms.setFeature({ vm: "keys", name: "__proto__", value: "p" });
    await vms.removeFeature({ vm: "keys", name: "__proto__" });
    await following;
    const replayed: typeof live = [];
    for await (const response of events.events({ vm: "keys", namePrefixes: ["domain-feature-"], afterSequence: since })) {
      if (response.kind.case !== "event" || response.kind.value.name === "connection-established") continue;
      replayed.push({ name: response.kind.value.name, kwargs: { ...response.kind.value.kwargs } });
      if (replayed.length === 2) break;
    }
    events.close();
    expect(replayed).toEqual(live);
    expect(live).toEqual([
      { name: "domain-feature-set:__proto__", kwargs: { feature: "__proto__", value: "p" } },
      { name: "domain-feature-delete:__proto__", kwargs: { feature: "__proto__" } },
    ]);
  });
});
