import * as grpc from "@grpc/grpc-js";
import { HostService } from "../../gen/steward/v1/host_service_pb";
import { VmClass } from "../../gen/steward/v1/vm_pb";
import { VmService } from "../../gen/steward/v1/vm_service_pb";
import { createClient, type StewardClient } from "../../src/client/steward-client";
import { rpcError } from "../fixtures/expect-rpc-error";
import { stopAndReadEvents } from "../fixtures/stored-events";
import { startTestServer, type TestServer } from "../fixtures/test-server";

describe("labels", () => {
  let server: TestServer;
  let host: StewardClient<typeof HostService>;
  beforeAll(async () => {
    server = await startTestServer();
    host = createClient(HostService, server.tcp);
  });
  afterAll(async () => {
    host.close();
    await server.stop();
  });

  it("has Qubes' eight labels built in, with their colours and indexes", async () => {
    const { labels } = await host.listLabels({});
    expect(labels.map((l) => [l.name, l.color, l.index, l.builtin])).toEqual([
      ["red", "0xcc0000", 1, true],
      ["orange", "0xf57900", 2, true],
      ["yellow", "0xedd400", 3, true],
      ["green", "0x73d216", 4, true],
      ["gray", "0x555753", 5, true],
      ["blue", "0x3465a4", 6, true],
      ["purple", "0x75507b", 7, true],
      ["black", "0x000000", 8, true],
    ]);
    expect((await host.getLabel({ name: "blue" })).label).toMatchObject({ color: "0x3465a4", index: 6 });
  });

  it("creates a custom label with the next index, and removes it when unused", async () => {
    const { label } = await host.createLabel({ name: "work-teal", color: "#008080" });
    expect(label).toMatchObject({ name: "work-teal", color: "0x008080", index: 9, builtin: false });
    expect((await rpcError(host.createLabel({ name: "work-teal", color: "0x000000" }))).info).toMatchObject({ reason: "LABEL_EXISTS" });
    await host.removeLabel({ name: "work-teal" });
    expect((await rpcError(host.getLabel({ name: "work-teal" }))).code).toBe(grpc.status.NOT_FOUND);
    expect((await rpcError(host.removeLabel({ name: "work-teal" }))).info).toMatchObject({ reason: "LABEL_NOT_FOUND" });
  });

  it("refuses bad names and colours, naming the field", async () => {
    const badName = await rpcError(host.createLabel({ name: "Work Teal", color: "0x008080" }));
    expect(badName.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(badName.info?.fieldViolations[0]?.field).toBe("name");
    const badColor = await rpcError(host.createLabel({ name: "teal", color: "teal" }));
    expect(badColor.info).toMatchObject({ reason: "INVALID_COLOR", metadata: { field: "color" } });
  });

  it("never removes a built-in label, nor one a VM uses (naming the VMs)", async () => {
    expect((await rpcError(host.removeLabel({ name: "red" }))).info).toMatchObject({ reason: "LABEL_BUILTIN" });
    await host.createLabel({ name: "teal", color: "0x008080" });
    const vms = createClient(VmService, server.tcp);
    await vms.createVm({ name: "teal-vm", klass: VmClass.STANDALONE_VM, label: "teal" });
    const inUse = await rpcError(host.removeLabel({ name: "teal" }));
    expect(inUse.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(inUse.info).toMatchObject({ reason: "LABEL_IN_USE", metadata: { label: "teal", vms: "teal-vm" } });
    await vms.removeVm({ vm: "teal-vm" });
    await host.removeLabel({ name: "teal" });
    vms.close();
  });

});

describe("label events", () => {
  it("are written with the change, in order", async () => {
    const server = await startTestServer();
    const host = createClient(HostService, server.tcp);
    await host.createLabel({ name: "evented", color: "0x123456" });
    await host.removeLabel({ name: "evented" });
    host.close();
    const events = await stopAndReadEvents(server);
    expect(events.map((e) => [e.name, e.subject, e.kwargs])).toEqual([
      ["pool-add", "", { pool: "default", driver: "file" }], // made at the first start
      ["label-add", "", { label: "evented", color: "0x123456", index: "9" }],
      ["label-delete", "", { label: "evented" }],
    ]);
    expect(events[1].sequence).toBeGreaterThan(events[0].sequence);
  });
});
