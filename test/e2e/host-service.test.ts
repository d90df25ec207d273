import * as grpc from "@grpc/grpc-js";
import * as fs from "node:fs";
import * as http2 from "node:http2";
import { HypervisorKind } from "../../gen/steward/v1/host_pb";
import { HostService } from "../../gen/steward/v1/host_service_pb";
import { VmClass } from "../../gen/steward/v1/vm_pb";
import packageJson from "../../package.json";
import { createClient } from "../../src/client/steward-client";
import { startTestServer, type TestServer } from "../fixtures/test-server";

describe("HostService over the network", () => {
  let server: TestServer;
  beforeAll(async () => (server = await startTestServer()));
  afterAll(() => server.stop());

  it("describes the host, the server and the hypervisor", async () => {
    const client = createClient(HostService, server.tcp);
    const { host } = await client.getHostInfo({});
    client.close();
    expect(host).toMatchObject({
      version: packageJson.version,
      apiVersion: "v1",
      hypervisor: HypervisorKind.SIM,
      hypervisorVersion: "",
      caller: "dom0",
    });
    expect(host!.hostId).toMatch(/^[0-9a-f-]{36}$/);
    expect(host!.hostname.length).toBeGreaterThan(0);
    expect(host!.apiFeatures).toEqual(expect.arrayContaining(["steward.v1.HostService/GetHostInfo", "steward.v1.HostService/ListVmClasses", "steward.v1.VmService/CreateVm"]));
    expect(host!.apiFeatures).toContain("steward.v1.VmService/GetVmStats");
    expect(host!.apiFeatures).not.toContain("steward.v1.BackupService/GetBackupProfile");
    expect(Number(host!.startTime!.seconds)).toBeGreaterThan(Date.now() / 1000 - 60);
  });

  it("lists the five VM classes with their rules, AdminVM first", async () => {
    const client = createClient(HostService, server.tcp);
    const { classes } = await client.listVmClasses({});
    client.close();
    expect(classes.map((c) => c.name)).toEqual(["AdminVM", "TemplateVM", "AppVM", "StandaloneVM", "DispVM"]);
    expect(classes[0]).toMatchObject({ klass: VmClass.ADMIN_VM, creatable: false, startable: false });
    expect(classes[2]).toMatchObject({ klass: VmClass.APP_VM, templateClass: VmClass.TEMPLATE_VM, creatable: true });
    expect(classes[4]).toMatchObject({ klass: VmClass.DISP_VM, templateClass: VmClass.APP_VM, creatable: false });
  });

  it("answers on the unix socket too, which only owner and group may use", async () => {
    const client = createClient(HostService, server.unix);
    const { host } = await client.getHostInfo({});
    client.close();
    expect(host!.caller).toBe("dom0");
    expect(fs.statSync(server.unix.slice("unix:".length)).mode & 0o777).toBe(0o660);
  });

  it("echoes the client's x-request-id, or makes one, and logs one line per RPC", async () => {
    const client = createClient(HostService, server.tcp);
    let echoed: grpc.MetadataValue | undefined;
    await client.getHostInfo({}, { metadata: { "x-request-id": "trace-42" }, onHeaders: (h) => (echoed = h.get("x-request-id")[0]) });
    expect(echoed).toBe("trace-42");
    await client.listVmClasses({}, { onHeaders: (h) => (echoed = h.get("x-request-id")[0]) });
    const first = echoed;
    await client.listVmClasses({}, { onHeaders: (h) => (echoed = h.get("x-request-id")[0]) });
    client.close();
    expect(first).toMatch(/^[0-9a-f]{12}-[0-9a-z]+$/);
    expect(echoed).toMatch(/^[0-9a-f]{12}-[0-9a-z]+$/);
    expect(echoed).not.toBe(first);

    const line = await server.logs.waitFor((l) => l.requestId === "trace-42");
    expect(line).toMatchObject({ msg: "rpc", method: "steward.v1.HostService/GetHostInfo", code: "OK", caller: "dom0" });
    expect(typeof line.durationMs).toBe("number");
    expect(line.peer).toMatch(/127\.0\.0\.1:\d+/);
    expect(server.logs.lines.filter((l) => l.requestId === "trace-42")).toHaveLength(1);
  });

  /** The response headers and trailers of one raw call to GetHostInfo with this request body. */
  async function rawCall(body: Buffer): Promise<{ headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders }> {
    const session = http2.connect(`http://${server.tcp}`);
    try {
      return await new Promise((resolve, reject) => {
        const stream = session.request({ ":method": "POST", ":path": "/steward.v1.HostService/GetHostInfo", "content-type": "application/grpc", te: "trailers" });
        let headers: http2.IncomingHttpHeaders = {};
        stream.on("response", (h) => (headers = h));
        stream.on("trailers", (trailers) => resolve({ headers, trailers }));
        stream.on("error", reject);
        stream.end(body);
        stream.resume();
      });
    } finally {
      session.close();
    }
  }

  it("sends x-request-id for HPACK never to index (a new value on every call), and no date", async () => {
    const { headers, trailers } = await rawCall(Buffer.from([0, 0, 0, 0, 0])); // an empty GetHostInfoRequest, uncompressed
    expect(trailers["grpc-status"]).toBe(String(grpc.status.OK));
    expect(headers["x-request-id"]).toMatch(/^[0-9a-f]{12}-[0-9a-z]+$/);
    expect((headers as Record<symbol, unknown>)[http2.sensitiveHeaders]).toEqual(["x-request-id"]);
    // Node's http2 would add a date to every response; gRPC has no use for it.
    expect(headers.date).toBeUndefined();
    expect(Object.keys(headers).sort()).toEqual([":status", "content-type", "grpc-accept-encoding", "grpc-encoding", "x-request-id"]);
  });

  it("sends the same headers before a failure's status", async () => {
    // Field 1 as length-delimited, its length cut off: a malformed request, INVALID_ARGUMENT.
    const { headers, trailers } = await rawCall(Buffer.from([0, 0, 0, 0, 2, 0x0a, 0xff]));
    expect(trailers["grpc-status"]).toBe(String(grpc.status.INVALID_ARGUMENT));
    expect(Object.keys(headers).sort()).toEqual([":status", "content-type", "grpc-accept-encoding", "grpc-encoding", "x-request-id"]);
  });
});
