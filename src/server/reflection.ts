import { getOption, hasOption, toBinary, type DescFile, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { operation_info } from "../../gen/google/longrunning/operations_pb";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb";
import type { RpcContext } from "./rpc-context";
import type { ServiceImpl } from "./service-impl";

/**
 * gRPC server reflection, v1 and v1alpha, answered from the generated descriptors, so that
 * grpcurl-style clients can list the services, describe any symbol and call any RPC in JSON.
 */

type Request = v1.ServerReflectionRequest | v1alpha.ServerReflectionRequest;
type Response = Omit<v1.ServerReflectionResponse, "$typeName" | "originalRequest" | "$unknown">;

export class DescriptorIndex {
  private readonly fileByName = new Map<string, DescFile>();
  private readonly fileBySymbol = new Map<string, DescFile>();
  private readonly serviceNames: string[];

  /** `extraFiles` are offered too though no service imports them (error details). */
  constructor(services: readonly DescService[], extraFiles: readonly DescFile[] = []) {
    this.serviceNames = services.map((s) => s.typeName).sort();
    for (const service of services) this.addFile(service.file);
    for (const file of extraFiles) this.addFile(file);
  }

  services(): readonly string[] {
    return this.serviceNames;
  }

  /**
   * The file and every file it imports, transitively, serialized; the file itself first. The
   * files of the types its long-running RPCs put in their Operations (their operation_info's
   * response and metadata types, which travel as Any) come too, as a client needs them to read
   * those Operations and no import names them.
   */
  fileWithImports(file: DescFile): Uint8Array[] {
    const seen = new Set<string>();
    const out: Uint8Array[] = [];
    const visit = (f: DescFile | undefined) => {
      if (!f || seen.has(f.name)) return;
      seen.add(f.name);
      out.push(toBinary(FileDescriptorProtoSchema, f.proto));
      for (const dependency of f.dependencies) visit(dependency);
      for (const typeName of operationTypesOf(f)) visit(this.bySymbol(typeName));
    };
    visit(file);
    return out;
  }

  byFileName(name: string): DescFile | undefined {
    return this.fileByName.get(name);
  }

  bySymbol(symbol: string): DescFile | undefined {
    return this.fileBySymbol.get(symbol.replace(/^\./, ""));
  }

  private addFile(file: DescFile): void {
    if (this.fileByName.has(file.proto.name)) return;
    this.fileByName.set(file.proto.name, file);
    for (const message of file.messages) this.addMessage(file, message);
    for (const enumeration of file.enums) this.fileBySymbol.set(enumeration.typeName, file);
    for (const service of file.services) {
      this.fileBySymbol.set(service.typeName, file);
      for (const method of service.methods) this.fileBySymbol.set(`${service.typeName}.${method.name}`, file);
    }
    for (const dependency of file.dependencies) this.addFile(dependency);
  }

  private addMessage(file: DescFile, message: DescFile["messages"][number]): void {
    this.fileBySymbol.set(message.typeName, file);
    for (const field of message.fields) this.fileBySymbol.set(`${message.typeName}.${field.name}`, file);
    for (const nested of message.nestedMessages) this.addMessage(file, nested);
    for (const nested of message.nestedEnums) this.fileBySymbol.set(nested.typeName, file);
  }
}

/** The response and metadata types a file's long-running RPCs name in their operation_info. */
function operationTypesOf(file: DescFile): string[] {
  return file.services.flatMap((service) =>
    service.methods.flatMap((method) => {
      if (!hasOption(method, operation_info)) return [];
      const info = getOption(method, operation_info);
      return [info.responseType, info.metadataType].filter((name) => name !== "");
    }),
  );
}

/** Longer than any file name or symbol of the contract by far. */
export const MAX_REFLECTION_NAME = 1024;

/**
 * The request as its answer echoes it (original_request): what it asked, and nothing it sent
 * besides (fields a reflection request does not have), so that no answer weighs more than a
 * request may ask; a request that named too long a name is echoed empty.
 */
function echoOf(request: Request): Request {
  if (tooLong(request)) return { ...request, host: "", messageRequest: { case: undefined }, $unknown: undefined };
  const asked = request.messageRequest;
  // An ExtensionRequest may carry fields it does not have too.
  const messageRequest = asked.case === "fileContainingExtension" ? { ...asked, value: { ...asked.value, $unknown: undefined } } : asked;
  return { ...request, messageRequest, $unknown: undefined } as Request;
}

function tooLong({ host, messageRequest: asked }: Request): boolean {
  const names = asked.case === "fileContainingExtension" ? [asked.value.containingType] : typeof asked.value === "string" ? [asked.value] : [];
  return [host, ...names].some((name) => name.length > MAX_REFLECTION_NAME);
}

export function answerReflection(index: DescriptorIndex, request: Request): Response {
  if (tooLong(request)) {
    return respond({ case: "errorResponse", value: { errorCode: grpc.status.INVALID_ARGUMENT, errorMessage: `names are at most ${MAX_REFLECTION_NAME} characters` } });
  }
  const asked = request.messageRequest;
  switch (asked.case) {
    case "listServices":
      return respond({ case: "listServicesResponse", value: { service: index.services().map((name) => ({ name })) } });
    case "fileByFilename":
      return fileResponse(index, index.byFileName(asked.value), `file ${asked.value}`);
    case "fileContainingSymbol":
      return fileResponse(index, index.bySymbol(asked.value), `symbol ${asked.value}`);
    case "fileContainingExtension":
      return notFound(`extension ${asked.value.extensionNumber} of ${asked.value.containingType}`);
    case "allExtensionNumbersOfType": {
      const known = index.bySymbol(asked.value);
      if (!known) return notFound(`type ${asked.value}`);
      // Steward's contract declares no extensions.
      return respond({ case: "allExtensionNumbersResponse", value: { baseTypeName: asked.value, extensionNumber: [] } });
    }
    default:
      return respond({
        case: "errorResponse",
        value: { errorCode: grpc.status.INVALID_ARGUMENT, errorMessage: "the request asks for nothing" },
      });
  }
}

function fileResponse(index: DescriptorIndex, file: DescFile | undefined, what: string): Response {
  if (!file) return notFound(what);
  return respond({ case: "fileDescriptorResponse", value: { fileDescriptorProto: index.fileWithImports(file) } });
}

function notFound(what: string): Response {
  return respond({ case: "errorResponse", value: { errorCode: grpc.status.NOT_FOUND, errorMessage: `${what} not found` } });
}

function respond(messageResponse: unknown): Response {
  return { validHost: "", messageResponse } as Response;
}

function reflectionImpl<S extends typeof v1.ServerReflection | typeof v1alpha.ServerReflection>(index: DescriptorIndex): ServiceImpl<S> {
  return {
    async *serverReflectionInfo(requests: AsyncIterable<Request>, _ctx: RpcContext) {
      for await (const request of requests) {
        yield { ...answerReflection(index, request), originalRequest: echoOf(request) } as never;
      }
    },
  } as unknown as ServiceImpl<S>;
}

export function reflectionServices(index: DescriptorIndex) {
  return {
    v1: { service: v1.ServerReflection, impl: reflectionImpl<typeof v1.ServerReflection>(index) },
    v1alpha: { service: v1alpha.ServerReflection, impl: reflectionImpl<typeof v1alpha.ServerReflection>(index) },
  };
}

export const REFLECTION_SERVICES: readonly DescService[] = [v1.ServerReflection, v1alpha.ServerReflection];

