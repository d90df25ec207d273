import * as grpc from "@grpc/grpc-js";
import * as http2 from "node:http2";
import { EventService } from "../../gen/steward/v1/event_service_pb";
import { HostService } from "../../gen/steward/v1/host_service_pb";
import { VmClass } from "../../gen/steward/v1/vm_pb";
import { VmService } from "../../gen/steward/v1/vm_service_pb";
import { createClient, type StewardClient } from "../../src/client/steward-client";
import { DEFAULT_MAX_STREAMS_PER_CONNECTION } from "../../src/config";
import { rpcError } from "../fixtures/expect-rpc-error";
import { vmRef } from "../fixtures/property-values";
import { startTestServer, type TestServer } from "../fixtures/test-server";

/** Opens an Events stream and resolves once its first message came; `stop` ends it. */
async function openStream(client: StewardClient<typeof EventService>, request: { namePrefixes?: string[] } = {}): Promise<{ stop(): Promise<void> }> {
  const abort = new AbortController();
  const iterator = client.events(request, { signal: abort.signal })[Symbol.asyncIterator]();
  await iterator.next();
  return {
    async stop() {
      abort.abort();
      await iterator.next().catch(() => undefined);
    },
  };
}

/** A raw HTTP/2 connection to the server, and the settings it announced. */
function connect(address: string): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${address}`);
    session.once("remoteSettings", () => resolve(session));
    session.once("error", reject);
  });
}

describe("resources one caller may hold", () => {
  let server: TestServer;
  beforeAll(async () => (server = await startTestServer(["--max-streams", "3", "--idle-timeout", "1"])));
  afterAll(() => server.stop());

  it("bounds the calls of one connection by HTTP/2's MAX_CONCURRENT_STREAMS", async () => {
    const session = await connect(server.tcp);
    expect(session.remoteSettings.maxConcurrentStreams).toBe(DEFAULT_MAX_STREAMS_PER_CONNECTION);
    session.close();
  });

  it("bounds the streams open on all connections together, and takes one again once one closes", async () => {
    const clients = [0, 1, 2, 3].map(() => createClient(EventService, server.tcp));
    const open = [];
    for (const client of clients.slice(0, 3)) open.push(await openStream(client));
    const refused = await rpcError(openStream(clients[3]));
    expect([refused.code, refused.info?.reason, refused.info?.metadata.limit]).toEqual([grpc.status.RESOURCE_EXHAUSTED, "TOO_MANY_STREAMS", "3"]);
    // Unary calls are not streams: they go on.
    await createClient(HostService, server.tcp).getHostInfo({});
    await open.shift()!.stop();
    await new Promise((resolve) => setTimeout(resolve, 50));
    open.push(await openStream(clients[3]));
    for (const stream of open) await stream.stop();
    for (const client of clients) client.close();
  });

  it("bounds name_prefixes in count and length", async () => {
    const events = createClient(EventService, server.tcp);
    const tooMany = await rpcError(openStream(events, { namePrefixes: Array.from({ length: 65 }, (_, i) => `p${i}`) }));
    expect([tooMany.code, tooMany.info?.reason, tooMany.info?.metadata.field, tooMany.info?.metadata.limit]).toEqual([grpc.status.INVALID_ARGUMENT, "INVALID_NAME_PREFIXES", "name_prefixes", "64"]);
    const tooLong = await rpcError(openStream(events, { namePrefixes: ["p".repeat(129)] }));
    expect([tooLong.info?.reason, tooLong.info?.metadata.limit]).toEqual(["INVALID_NAME_PREFIXES", "128"]);
    events.close();
  });

  it("closes a connection idle for --idle-timeout, and keeps one with a stream open", async () => {
    const idle = await connect(server.tcp);
    const closed = new Promise<string>((resolve) => idle.once("goaway", () => resolve("goaway")));
    const busy = createClient(EventService, server.tcp);
    const stream = await openStream(busy);
    expect(await Promise.race([closed, new Promise((resolve) => setTimeout(() => resolve("still open"), 3000))])).toBe("goaway");
    idle.destroy();
    // The connection with an Events stream was not idle: the stream still goes on.
    const events = busy.events({})[Symbol.asyncIterator]();
    expect((await events.next()).done).toBe(false);
    await events.return?.();
    await stream.stop();
    busy.close();
  });

  it("answers headers over its bounds with a status, and the connection goes on", async () => {
    const host = createClient(HostService, server.tcp);
    const big = await rpcError(host.getHostInfo({}, { metadata: { "x-big": "a".repeat(20_000) } }));
    expect([big.code, big.info?.reason, big.info?.metadata.limit]).toEqual([grpc.status.RESOURCE_EXHAUSTED, "HEADERS_TOO_LARGE", String(16 * 1024)]);
    const many: Record<string, string> = {};
    for (let i = 0; i < 100; i++) many[`x-h${i}`] = "v";
    const crowded = await rpcError(host.getHostInfo({}, { metadata: many }));
    expect([crowded.code, crowded.info?.reason, crowded.info?.metadata.limit]).toEqual([grpc.status.RESOURCE_EXHAUSTED, "HEADERS_TOO_LARGE", "64"]);
    expect((await host.getHostInfo({})).host).toBeDefined();
    host.close();
  });

  it("quotes request text only up to a short length in errors", async () => {
    const vms = createClient(VmService, server.tcp);
    const host = createClient(HostService, server.tcp);
    await vms.createVm({ name: "quoted", klass: VmClass.STANDALONE_VM, label: "red" });
    const long = "n".repeat(100_000);
    const calls = [
      () => vms.getProperty({ vm: "quoted", name: long }),
      () => host.getGlobalProperty({ name: long }),
      () => vms.addTag({ vm: "quoted", tag: `created-by-${long}` }),
      () => vms.getFeature({ vm: "quoted", name: long.slice(0, 255) }),
      () => vms.setProperty({ vm: "quoted", name: "label", value: { kind: { case: "labelValue", value: long } } }),
      () => vms.setProperty({ vm: "quoted", name: "netvm", value: vmRef(long.slice(0, 31)) }),
    ];
    for (const call of calls) {
      const error = await rpcError(call());
      expect(error.details.length).toBeLessThanOrEqual(512);
      for (const value of Object.values(error.info?.metadata ?? {})) expect(value.length).toBeLessThanOrEqual(128);
    }
    vms.close();
    host.close();
  });
});
