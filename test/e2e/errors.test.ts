import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import * as http2 from "node:http2";
import { HostService } from "../../gen/steward/v1/host_service_pb";
import { CreateVmRequestSchema, VmService } from "../../gen/steward/v1/vm_service_pb";
import { hostApi } from "../../src/api/host/host-api";
import { errorDetails } from "../../src/client/status-details";
import { createClient } from "../../src/client/steward-client";
import { MIN_MAX_MESSAGE_BYTES, parseServeConfig } from "../../src/config";
import { binding, StewardServer } from "../../src/server/steward-server";
import { rpcError } from "../fixtures/expect-rpc-error";
import { STEWARD_SERVICES } from "../fixtures/services";
import { LogCapture } from "../fixtures/log-capture";
import { startTestServer, type TestServer } from "../fixtures/test-server";


/** A client that sends raw bytes to one method, to test what the server does with bad ones. */
function rawCall(address: string, path: string, bytes: Buffer): Promise<unknown> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, bytes, (error, response) => {
      client.close();
      if (error) reject(error);
      else resolve(response);
    }),
  );
}

/** The status of one call over raw HTTP/2, with these headers and these gRPC frames sent. */
async function rawStatus(address: string, path: string, headers: http2.OutgoingHttpHeaders, frames: Buffer[]) {
  const session = http2.connect(`http://${address}`);
  try {
    const trailers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
      const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...headers });
      stream.on("response", (h) => h["grpc-status"] !== undefined && resolve(h));
      stream.on("trailers", resolve);
      stream.on("error", reject);
      for (const frame of frames) stream.write(frame);
      stream.end();
      stream.resume();
    });
    const details = trailers["grpc-status-details-bin"] as string | undefined;
    const metadata = new grpc.Metadata();
    if (details) metadata.set("grpc-status-details-bin", Buffer.from(details, "base64"));
    const code = Number(trailers["grpc-status"]);
    return { code, info: errorDetails({ ...new Error(), code, details: "", metadata }) };
  } finally {
    session.close();
  }
}

/** A gRPC frame: the compressed flag, the length, the bytes. */
function frame(bytes: Buffer, compressed = false): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt8(compressed ? 1 : 0, 0);
  prefix.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([prefix, bytes]);
}

describe("error statuses", () => {
  let server: TestServer;
  beforeAll(async () => (server = await startTestServer(["--max-message-bytes", String(MIN_MAX_MESSAGE_BYTES)])));
  afterAll(() => server.stop());

  it("answers UNIMPLEMENTED naming the RPC for every RPC not implemented yet, never a fake success", async () => {
    const { host } = await createClient(HostService, server.tcp).getHostInfo({});
    const implemented = new Set(host!.apiFeatures);
    let checked = 0;
    for (const service of STEWARD_SERVICES) {
      const client = createClient(service, server.tcp) as unknown as Record<string, (...args: unknown[]) => unknown>;
      for (const method of service.methods) {
        const name = `${service.typeName}/${method.name}`;
        if (implemented.has(name)) continue;
        const call =
          method.methodKind === "unary" || method.methodKind === "client_streaming"
            ? (client[method.localName](method.methodKind === "unary" ? {} : [{}]) as Promise<unknown>)
            : drain(client[method.localName](method.methodKind === "server_streaming" ? {} : [{}]) as AsyncIterable<unknown>);
        const error = await rpcError(call);
        expect([name, error.code]).toEqual([name, grpc.status.UNIMPLEMENTED]);
        expect(error.details).toBe(`${name} is not implemented yet`);
        expect(error.info).toMatchObject({ reason: "NOT_IMPLEMENTED", domain: "steward.v1", metadata: { rpc: name } });
        checked++;
      }
    }
    const total = STEWARD_SERVICES.reduce((sum, service) => sum + service.methods.length, 0);
    expect(checked).toBe(total - implemented.size);
  });

  it("answers INVALID_ARGUMENT naming the field for a request that cannot be decoded", async () => {
    const good = Buffer.from(toBinary(CreateVmRequestSchema, create(CreateVmRequestSchema, { name: "work", label: "red" })));
    const error = await rpcError(rawCall(server.tcp, "/steward.v1.VmService/CreateVm", good.subarray(0, good.length - 2)));
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error.details).toMatch(/^label: cannot be decoded/);
    expect(error.info).toMatchObject({ reason: "MALFORMED_REQUEST", metadata: { field: "label" } });
    expect(error.info!.fieldViolations[0].field).toBe("label");
  });

  it("answers RESOURCE_EXHAUSTED, with ErrorInfo naming the limit, for a request over the maximum message size", async () => {
    const client = createClient(VmService, server.tcp);
    const error = await rpcError(client.createVm({ name: "x".repeat(MIN_MAX_MESSAGE_BYTES + 10), label: "red" }));
    client.close();
    expect(error.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(error.info).toMatchObject({ reason: "MESSAGE_TOO_LARGE", domain: "steward.v1", metadata: { limit: String(MIN_MAX_MESSAGE_BYTES) } });
  });

  it("answers INVALID_ARGUMENT, never INTERNAL, for frames grpc-js cannot read: bad compression, too many or too few messages", async () => {
    const malformed = { code: grpc.status.INVALID_ARGUMENT, info: expect.objectContaining({ reason: "MALFORMED_REQUEST" }) };
    const hostInfo = "/steward.v1.HostService/GetHostInfo";
    expect(await rawStatus(server.tcp, hostInfo, { "grpc-encoding": "gzip" }, [frame(Buffer.from("not gzip at all"), true)])).toEqual(malformed);
    expect(await rawStatus(server.tcp, hostInfo, {}, [frame(Buffer.alloc(0)), frame(Buffer.alloc(0))])).toEqual(malformed);
    expect(await rawStatus(server.tcp, hostInfo, {}, [])).toEqual(malformed);
    expect(await rawStatus(server.tcp, "/steward.v1.EventService/Events", {}, [])).toEqual(malformed);
    // A compression the server does not take is UNIMPLEMENTED, as the gRPC protocol has it.
    expect(await rawStatus(server.tcp, hostInfo, { "grpc-encoding": "br" }, [frame(Buffer.from("xx"), true)])).toEqual({
      code: grpc.status.UNIMPLEMENTED,
      info: expect.objectContaining({ reason: "ENCODING_UNSUPPORTED", metadata: { encoding: "br" } }),
    });
  });

  it("answers UNIMPLEMENTED, with ErrorInfo, for a method outside the contract", async () => {
    const error = await rpcError(rawCall(server.tcp, "/steward.v1.VmService/Frobnicate", Buffer.alloc(0)));
    expect(error.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(error.info).toMatchObject({ reason: "METHOD_UNKNOWN", metadata: { method: "/steward.v1.VmService/Frobnicate" } });
  });
});

describe("an unexpected failure", () => {
  it("becomes INTERNAL with a generic message, and its cause goes to the log", async () => {
    const logs = new LogCapture();
    const config = parseServeConfig(["--listen", "127.0.0.1:0", "--data-dir", "/nonexistent"], {});
    const broken = hostApi({ hostInfo: { describe: () => { throw new Error("disk on fire at /var/secret"); } } as never, labels: {} as never, globals: {} as never, pageTokens: {} as never }, () => []);
    const server = new StewardServer(config, [binding(HostService, broken)], logs.log);
    await server.listen();
    const client = createClient(HostService, server.addresses[0]);
    const error = await rpcError(client.getHostInfo({}, { metadata: { "x-request-id": "boom-1" } }));
    client.close();
    await server.stop();

    expect(error.code).toBe(grpc.status.INTERNAL);
    expect(error.details).not.toMatch(/fire|secret/);
    expect(error.details).toContain("boom-1");
    expect(error.info).toMatchObject({ reason: "INTERNAL", metadata: { request_id: "boom-1" } });
    const line = logs.lines.find((l) => l.requestId === "boom-1")!;
    expect(line).toMatchObject({ code: "INTERNAL", level: 50 });
    expect(JSON.stringify(line.err)).toContain("disk on fire");
  });
});

async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream) {
    // consume
  }
}
