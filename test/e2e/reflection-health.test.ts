import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../../gen/grpc/health/v1/health_pb";
import * as reflectionV1 from "../../gen/grpc/reflection/v1/reflection_pb";
import * as reflectionV1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb";
import { createClient } from "../../src/client/steward-client";
import { rpcError } from "../fixtures/expect-rpc-error";
import { STEWARD_SERVICES } from "../fixtures/services";
import { startTestServer, type TestServer } from "../fixtures/test-server";


type ReflectionRequest = { messageRequest: { case: string; value: string } };

/** One request and its answer on a reflection stream of the given version. */
async function reflect(address: string, version: typeof reflectionV1 | typeof reflectionV1alpha, request: ReflectionRequest) {
  const client = createClient(version.ServerReflection, address);
  try {
    for await (const response of client.serverReflectionInfo([request as never])) return response;
    throw new Error("no reflection answer");
  } finally {
    client.close();
  }
}

describe("server reflection", () => {
  let server: TestServer;
  beforeAll(async () => (server = await startTestServer()));
  afterAll(() => server.stop());

  it.each([["v1", reflectionV1] as const, ["v1alpha", reflectionV1alpha] as const])("%s lists every service", async (_name, version) => {
    const response = await reflect(server.tcp, version, { messageRequest: { case: "listServices", value: "" } });
    expect(response.messageResponse.case).toBe("listServicesResponse");
    const names = (response.messageResponse.value as { service: { name: string }[] }).service.map((s) => s.name);
    expect(names).toEqual(
      [...STEWARD_SERVICES.map((s) => s.typeName), "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"].sort(),
    );
  });

  it.each(STEWARD_SERVICES.map((s) => [s.typeName, s] as const))("resolves %s with all its imports", async (name, service) => {
    const response = await reflect(server.tcp, reflectionV1, { messageRequest: { case: "fileContainingSymbol", value: name } });
    expect(response.messageResponse.case).toBe("fileDescriptorResponse");
    const blobs = (response.messageResponse.value as { fileDescriptorProto: Uint8Array[] }).fileDescriptorProto;
    const files = blobs.map((blob) => fromBinary(FileDescriptorProtoSchema, blob));
    expect(files[0].name).toBe(service.file.proto.name);
    // A registry can only be built when every import is there.
    const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: dependenciesFirst(files) }));
    const resolved = registry.getService(name)!;
    expect(resolved.methods.map((m) => [m.name, m.methodKind, m.input.typeName, m.output.typeName])).toEqual(
      service.methods.map((m) => [m.name, m.methodKind, m.input.typeName, m.output.typeName]),
    );
  });

  it("resolves files by name, and messages, enums and methods by symbol", async () => {
    const byFile = await reflect(server.tcp, reflectionV1, { messageRequest: { case: "fileByFilename", value: "steward/v1/vm.proto" } });
    expect(byFile.messageResponse.case).toBe("fileDescriptorResponse");
    for (const symbol of ["steward.v1.CreateVmRequest", "steward.v1.PowerState", "steward.v1.VmService.StartVm", "google.rpc.ErrorInfo"]) {
      const response = await reflect(server.tcp, reflectionV1, { messageRequest: { case: "fileContainingSymbol", value: symbol } });
      expect([symbol, response.messageResponse.case]).toEqual([symbol, "fileDescriptorResponse"]);
    }
  });

  it("gives, with a service whose RPCs return Operations, the files of the types those Operations carry as Any", async () => {
    const response = await reflect(server.tcp, reflectionV1, { messageRequest: { case: "fileContainingSymbol", value: "steward.v1.VmService" } });
    const blobs = (response.messageResponse.value as { fileDescriptorProto: Uint8Array[] }).fileDescriptorProto;
    const names = blobs.map((blob) => fromBinary(FileDescriptorProtoSchema, blob).name);
    // OperationMetadata (CloneVm's metadata_type) is in a file vm_service.proto does not import.
    expect(names).toEqual(expect.arrayContaining(["steward/v1/vm_service.proto", "google/longrunning/operations.proto", "steward/v1/operation.proto"]));
    const symbol = await reflect(server.tcp, reflectionV1, { messageRequest: { case: "fileContainingSymbol", value: "steward.v1.OperationMetadata" } });
    expect(symbol.messageResponse.case).toBe("fileDescriptorResponse");
  });

  it("answers NOT_FOUND in the stream for an unknown symbol", async () => {
    const response = await reflect(server.tcp, reflectionV1, { messageRequest: { case: "fileContainingSymbol", value: "steward.v1.Nope" } });
    expect(response.messageResponse).toEqual({
      case: "errorResponse",
      value: expect.objectContaining({ errorCode: grpc.status.NOT_FOUND }),
    });
  });

  it("echoes what a request asked and nothing it sent besides, and refuses names no contract has", async () => {
    const listServices = toBinary(reflectionV1.ServerReflectionRequestSchema, create(reflectionV1.ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } }));
    // Field 15, which the request does not have, of 100 KB.
    const padding = Buffer.concat([Buffer.from([0x7a, 0xa0, 0x8d, 0x06]), Buffer.alloc(100_000, 0x41)]);
    const client = new grpc.Client(server.tcp, grpc.credentials.createInsecure());
    const answer = await new Promise<Buffer>((resolve, reject) => {
      const call = client.makeBidiStreamRequest("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", (b: Buffer) => b, (b: Buffer) => b);
      call.once("data", (data: Buffer) => {
        resolve(data);
        call.end();
      });
      call.on("error", reject);
      call.write(Buffer.concat([listServices, padding]));
    });
    client.close();
    const response = fromBinary(reflectionV1.ServerReflectionResponseSchema, answer);
    expect(response.messageResponse.case).toBe("listServicesResponse");
    expect(answer.length).toBeLessThan(10_000);
    expect(response.originalRequest?.messageRequest.case).toBe("listServices");

    const long = await reflect(server.tcp, reflectionV1, { messageRequest: { case: "fileContainingSymbol", value: "x".repeat(1025) } });
    expect(long.messageResponse).toEqual({ case: "errorResponse", value: expect.objectContaining({ errorCode: grpc.status.INVALID_ARGUMENT }) });
    expect(long.originalRequest?.messageRequest.case).toBeUndefined();
  });
});

describe("health", () => {
  it("is SERVING for the server and each service while up, and NOT_SERVING once stopping", async () => {
    const server = await startTestServer();
    const client = createClient(Health, server.tcp);
    expect((await client.check({ service: "" })).status).toBe(ServingStatus.SERVING);
    expect((await client.check({ service: "steward.v1.VmService" })).status).toBe(ServingStatus.SERVING);
    expect((await rpcError(client.check({ service: "no.such.Service" }))).code).toBe(grpc.status.NOT_FOUND);

    const seen: ServingStatus[] = [];
    const watching = (async () => {
      for await (const update of client.watch({ service: "" })) {
        seen.push(update.status);
        if (seen.length === 1) void server.stop();
      }
    })();
    const ended = await rpcError(watching);
    client.close();
    expect(seen).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
    expect(ended.code).toBe(grpc.status.UNAVAILABLE);
    expect(ended.info?.reason).toBe("SERVER_STOPPING");
  });
});

function dependenciesFirst(files: FileDescriptorProto[]): FileDescriptorProto[] {
  const byName = new Map(files.map((f) => [f.name, f]));
  const ordered: FileDescriptorProto[] = [];
  const visit = (file: FileDescriptorProto) => {
    if (ordered.includes(file)) return;
    for (const dependency of file.dependency) visit(byName.get(dependency) ?? missing(dependency));
    ordered.push(file);
  };
  files.forEach(visit);
  return ordered;
}

function missing(name: string): never {
  throw new Error(`reflection left out ${name}`);
}
