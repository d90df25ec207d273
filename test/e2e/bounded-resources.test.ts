import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import * as crypto from "node:crypto";
import * as http2 from "node:http2";
import * as net from "node:net";
import * as zlib from "node:zlib";
import { ServerReflectionRequestSchema } from "../../gen/grpc/reflection/v1/reflection_pb";
import { EventService } from "../../gen/steward/v1/event_service_pb";
import { HostService } from "../../gen/steward/v1/host_service_pb";
import { VmClass } from "../../gen/steward/v1/vm_pb";
import { VmService } from "../../gen/steward/v1/vm_service_pb";
import { errorDetails } from "../../src/client/status-details";
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
    const host = createClient(HostService, server.tcp);
    await host.getHostInfo({});
    host.close();
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
    let timer: NodeJS.Timeout | undefined;
    const stillOpen = new Promise((resolve) => (timer = setTimeout(() => resolve("still open"), 3000)));
    expect(await Promise.race([closed, stillOpen])).toBe("goaway");
    clearTimeout(timer);
    idle.destroy();
    // The connection with an Events stream was not idle: it still takes calls.
    const another = await openStream(busy);
    await another.stop();
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

  it("answers with a status up to the ceilings it raised in Node (past 64 KiB and 128 headers), on the same connection", async () => {
    // grpc-js clients send no more than 64 KiB of headers: a raw HTTP/2 client may.
    const session = http2.connect(`http://${server.tcp}`, { maxSendHeaderBlockLength: 1024 * 1024 });
    const status = (headers: http2.OutgoingHttpHeaders) =>
      new Promise<string | undefined>((resolve, reject) => {
        const stream = session.request({ ":method": "POST", ":path": "/steward.v1.HostService/GetHostInfo", "content-type": "application/grpc", te: "trailers", ...headers });
        stream.on("response", (h) => h["grpc-status"] !== undefined && resolve(h["grpc-status"] as string));
        stream.on("trailers", (t: http2.IncomingHttpHeaders) => resolve(t["grpc-status"] as string));
        stream.on("close", () => reject(new Error(`stream closed with ${stream.rstCode}`)));
        stream.end(Buffer.from([0, 0, 0, 0, 0]));
        stream.resume();
      });
    const random = (chars: number) => crypto.randomBytes(chars / 2).toString("hex");
    const large: http2.OutgoingHttpHeaders = {};
    for (let i = 0; i < 5; i++) large[`x-big${i}`] = random(14 * 1024); // 70 KiB, which HPACK hardly shrinks
    const crowded: http2.OutgoingHttpHeaders = {};
    for (let i = 0; i < 200; i++) crowded[`x-h${i}`] = "v";
    expect(await status(large)).toBe(String(grpc.status.RESOURCE_EXHAUSTED));
    expect(await status(crowded)).toBe(String(grpc.status.RESOURCE_EXHAUSTED));
    expect(await status({})).toBe(String(grpc.status.OK));
    session.close();
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
    const answers = [];
    for (const call of calls) {
      const error = await rpcError(call());
      expect(error.details.length).toBeLessThanOrEqual(512);
      for (const value of Object.values(error.info?.metadata ?? {})) expect(value.length).toBeLessThanOrEqual(128);
      // The text is quoted up to 64 characters: 63 of it, then an ellipsis.
      expect(error.details).not.toContain("n".repeat(64));
      answers.push([error.code, error.info?.reason, error.details.includes(`${"n".repeat(63)}…`)]);
    }
    const { NOT_FOUND, PERMISSION_DENIED } = grpc.status;
    expect(answers).toEqual([
      [NOT_FOUND, "PROPERTY_NOT_FOUND", true],
      [NOT_FOUND, "PROPERTY_NOT_FOUND", true],
      [PERMISSION_DENIED, "TAG_RESERVED", false], // it quotes nothing
      [NOT_FOUND, "FEATURE_NOT_FOUND", true],
      [NOT_FOUND, "LABEL_NOT_FOUND", true],
      [NOT_FOUND, "VM_NOT_FOUND", false], // a VM name has at most 31 characters: quoted whole
    ]);
    vms.close();
    host.close();
  });
});

/** A call on its own connection whose request message never ends: `bytes` of it are sent. */
async function heldCall(address: string, bytes: number, declared = bytes + 1000): Promise<{ close(): void }> {
  const session = await connect(address);
  const stream = session.request({ ":method": "POST", ":path": "/steward.v1.HostService/GetHostInfo", "content-type": "application/grpc", te: "trailers" });
  stream.on("error", () => undefined);
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(declared, 1);
  await new Promise<void>((resolve) => stream.write(Buffer.concat([prefix, Buffer.alloc(bytes, 1)]), () => resolve()));
  return {
    // Not session.close(): it would wait for the call, which never ends.
    close: () => session.destroy(),
  };
}

/** A GetHostInfoRequest carrying `bytes` of a field it does not have, which its decoder skips. */
function paddedHostInfoRequest(bytes: number): Buffer {
  const length: number[] = [];
  for (let left = bytes; ; left >>= 7) {
    if (left < 0x80) {
      length.push(left);
      break;
    }
    length.push((left & 0x7f) | 0x80);
  }
  return Buffer.concat([Buffer.from([0x7a, ...length]), Buffer.alloc(bytes, 0x41)]);
}

function hostInfoCall(address: string, request: Buffer): Promise<grpc.ServiceError | undefined> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise((resolve) =>
    client.makeUnaryRequest("/steward.v1.HostService/GetHostInfo", (b: Buffer) => b, (b: Buffer) => b, request, (error) => {
      client.close();
      resolve(error ?? undefined);
    }),
  );
}

describe("what calls hold before a handler sees them", () => {
  let server: TestServer;
  const MiB = 1024 * 1024;
  beforeAll(async () => (server = await startTestServer(["--max-calls", "3", "--max-message-bytes", String(MiB), "--max-pending-request-bytes", String(MiB)])));
  afterAll(() => server.stop());

  it("bounds the calls of any kind open at once on all connections, counting those whose request never ends", async () => {
    const held = [await heldCall(server.tcp, 10), await heldCall(server.tcp, 10), await heldCall(server.tcp, 10)];
    const refused = await rpcError(createClient(HostService, server.tcp).getHostInfo({}));
    expect([refused.code, refused.info?.reason, refused.info?.metadata.limit]).toEqual([grpc.status.RESOURCE_EXHAUSTED, "TOO_MANY_CALLS", "3"]);
    // The access log never sees the call; the gate tells of it, at once.
    const told = await server.logs.waitFor((line) => typeof line.turnedAway === "object");
    expect(told.turnedAway).toMatchObject({ calls: 1 });
    held.shift()!.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await hostInfoCall(server.tcp, Buffer.alloc(0))).toBeUndefined();
    for (const call of held) call.close();
  });

  it("bounds the bytes of requests not yet whole, on all calls together, and takes them again once freed", async () => {
    // 900 KB of a 1 MB message held; 200 KB more of another call pass the 1 MiB the server holds.
    const held = await heldCall(server.tcp, 900_000, 1_000_000);
    const refused = await hostInfoCall(server.tcp, paddedHostInfoRequest(200_000));
    const info = refused && errorDetails(refused);
    expect([refused?.code, info?.reason, info?.metadata.limit]).toEqual([grpc.status.RESOURCE_EXHAUSTED, "PENDING_REQUESTS_TOO_LARGE", String(MiB)]);
    // Small requests still pass: they weigh next to nothing.
    expect(await hostInfoCall(server.tcp, Buffer.alloc(0))).toBeUndefined();
    held.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await hostInfoCall(server.tcp, paddedHostInfoRequest(200_000))).toBeUndefined();
  });

  it("counts a unary call's whole request for as long as the call lasts, so a client that never ends its side holds no more", async () => {
    const held = await heldCall(server.tcp, 900_000, 900_000);
    const refused = await hostInfoCall(server.tcp, paddedHostInfoRequest(200_000));
    expect([refused?.code, refused && errorDetails(refused)?.reason]).toEqual([grpc.status.RESOURCE_EXHAUSTED, "PENDING_REQUESTS_TOO_LARGE"]);
    held.close();
    // The server counts the call until it sees its connection go.
    await new Promise((resolve) => setTimeout(resolve, 100));
  });

  it("counts a compressed request as the message size it may inflate to", async () => {
    // A whole gzip message of a few bytes, never ended: it may inflate to 1 MiB, all the server holds.
    const session = await connect(server.tcp);
    const stream = session.request({ ":method": "POST", ":path": "/steward.v1.HostService/GetHostInfo", "content-type": "application/grpc", te: "trailers", "grpc-encoding": "gzip" });
    stream.on("error", () => undefined);
    const body = zlib.gzipSync(Buffer.alloc(0));
    const prefix = Buffer.from([1, 0, 0, 0, 0]);
    prefix.writeUInt32BE(body.length, 1);
    await new Promise<void>((resolve) => stream.write(Buffer.concat([prefix, body]), () => resolve()));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const refused = await hostInfoCall(server.tcp, paddedHostInfoRequest(10));
    expect(refused && errorDetails(refused)?.reason).toBe("PENDING_REQUESTS_TOO_LARGE");
    session.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await hostInfoCall(server.tcp, paddedHostInfoRequest(10))).toBeUndefined();
  });

  it("closes a call it refused, so that nothing grpc-js had of it stays held", async () => {
    // A whole 500 KB message, then 600 KB of another: refused with the status, then closed.
    const session = await connect(server.tcp);
    const stream = session.request({ ":method": "POST", ":path": "/steward.v1.HostService/GetHostInfo", "content-type": "application/grpc", te: "trailers" });
    stream.on("error", () => undefined);
    const status = new Promise<unknown>((resolve) => stream.on("response", (headers) => resolve(headers["grpc-status"])));
    const closed = new Promise<void>((resolve) => stream.on("close", () => resolve()));
    const whole = Buffer.concat([Buffer.from([0, 0, 0x07, 0xa1, 0x20]), Buffer.alloc(500_000, 1)]);
    const partial = Buffer.concat([Buffer.from([0, 0, 0x0f, 0x42, 0x40]), Buffer.alloc(600_000, 1)]);
    stream.write(Buffer.concat([whole, partial]));
    expect(await status).toBe(String(grpc.status.RESOURCE_EXHAUSTED));
    await closed;
    session.destroy();
  });

  it("lets a stream's messages go once its handler has read them: a stream may carry far more than the bound", async () => {
    const client = new grpc.Client(server.tcp, grpc.credentials.createInsecure());
    const call = client.makeBidiStreamRequest("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", (b: Buffer) => b, (b: Buffer) => b);
    const answers: Buffer[] = [];
    const ended = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
    call.on("data", (answer: Buffer) => answers.push(answer));
    // list_services, padded with 300 KB of a field the request does not have: 8 of them are
    // 2.4 MB, more than twice the 1 MiB the server holds.
    const listServices = Buffer.concat([Buffer.from(toBinary(ServerReflectionRequestSchema, create(ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } }))), paddedHostInfoRequest(300_000)]);
    for (let i = 0; i < 8; i++) {
      call.write(listServices);
      while (answers.length <= i) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    call.end();
    expect((await ended).code).toBe(grpc.status.OK);
    expect(answers).toHaveLength(8);
    client.close();
  });

});

describe("connections", () => {
  let server: TestServer;
  beforeAll(async () => (server = await startTestServer(["--max-connections", "5"])));
  afterAll(() => server.stop());

  it("past --max-connections are closed as they come", async () => {
    const sessions = await Promise.all([1, 2, 3, 4, 5].map(() => connect(server.tcp)));
    const sixth = http2.connect(`http://${server.tcp}`);
    sixth.on("error", () => undefined);
    expect(await new Promise((resolve) => {
      sixth.once("remoteSettings", () => resolve("served"));
      sixth.once("close", () => resolve("closed"));
    })).toBe("closed");
    sessions.shift()!.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await hostInfoCall(server.tcp, Buffer.alloc(0))).toBeUndefined();
    for (const session of sessions) session.destroy();
  });
});

/** HTTP/2 frames as they come on a socket: their types, in order. */
function frameTypes(socket: net.Socket): number[] {
  const types: number[] = [];
  let buffered = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= 9) {
      const length = buffered.readUIntBE(0, 3);
      if (buffered.length < 9 + length) break;
      const type = buffered[3];
      types.push(type);
      // The server's SETTINGS are acknowledged, as any peer does; its PINGs never are.
      if (type === HTTP2_SETTINGS && (buffered[4] & 1) === 0) socket.write(Buffer.from([0, 0, 0, HTTP2_SETTINGS, 1, 0, 0, 0, 0]));
      buffered = buffered.subarray(9 + length);
    }
  });
  return types;
}

const HTTP2_SETTINGS = 4;
const HTTP2_PING = 6;

describe("keepalive", () => {
  let server: TestServer;
  beforeAll(async () => (server = await startTestServer(["--keepalive", "1", "--keepalive-timeout", "1", "--idle-timeout", "60"])));
  afterAll(() => server.stop());

  it("closes a connection that does not answer its pings, and keeps one that does", async () => {
    const [host, port] = server.tcp.split(":");
    const silent = net.connect(Number(port), host);
    silent.write(Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Buffer.from([0, 0, 0, HTTP2_SETTINGS, 0, 0, 0, 0, 0])]));
    const types = frameTypes(silent);
    const started = Date.now();
    const closed = new Promise<number>((resolve) => silent.on("close", () => resolve(Date.now() - started)));
    silent.on("error", () => undefined);
    // A client that answers (Node's HTTP/2 does, as every gRPC client's) keeps its connection.
    const answering = await connect(server.tcp);
    let pings = 0;
    answering.on("ping", () => pings++);
    const answeringClosed = new Promise<string>((resolve) => answering.once("close", () => resolve("closed")));
    const after = await closed;
    expect(types).toContain(HTTP2_PING);
    expect(after).toBeGreaterThanOrEqual(1000);
    expect(after).toBeLessThan(10_000);
    let timer: NodeJS.Timeout | undefined;
    const stillOpen = new Promise<string>((resolve) => (timer = setTimeout(() => resolve("open"), 1500)));
    expect(await Promise.race([answeringClosed, stillOpen])).toBe("open");
    clearTimeout(timer);
    expect(pings).toBeGreaterThanOrEqual(2);
    answering.destroy();
  });
});
