import { fromBinary, toBinary, type Message, type DescField, type DescMessage, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import type * as grpc from "@grpc/grpc-js";

/**
 * grpc-js service definitions built from the generated descriptors, for the server and for
 * clients alike: the paths, stream kinds and (de)serializers all come from the contract.
 */

/**
 * What a request deserializer yields for bytes that are not a valid message. grpc-js would
 * answer INTERNAL for a deserializer that throws; a malformed request is the client's mistake,
 * so the binding answers INVALID_ARGUMENT naming the field instead.
 */
export class MalformedMessage {
  constructor(
    readonly field: string,
    readonly cause: string,
  ) {}
}

export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

export function methodDefinition(method: DescMethod): grpc.MethodDefinition<object, object> {
  const kind = method.methodKind;
  return {
    path: methodPath(method),
    requestStream: kind === "client_streaming" || kind === "bidi_streaming",
    responseStream: kind === "server_streaming" || kind === "bidi_streaming",
    requestSerialize: (message) => asBuffer(toBinary(method.input, message as never)),
    requestDeserialize: (bytes) => decodeOrMark(method.input, bytes),
    responseSerialize: (message) => serializeResponse(method.output, message),
    responseDeserialize: (bytes) => fromBinary(method.output, bytes),
    originalName: method.localName,
  };
}

export function serviceDefinition(service: DescService): grpc.ServiceDefinition {
  return Object.fromEntries(service.methods.map((method) => [method.localName, methodDefinition(method)]));
}

function decodeOrMark(schema: DescMessage, bytes: Uint8Array): object {
  try {
    return fromBinary(schema, bytes);
  } catch (error) {
    return new MalformedMessage(locateBadField(schema, bytes) ?? "request", (error as Error).message);
  }
}

/**
 * Walks the wire format to find the first field whose bytes cannot be read, descending into
 * message fields, and returns its path ("volume.vm"); undefined when the fault is not in a field.
 */
export function locateBadField(schema: DescMessage, bytes: Uint8Array, prefix = ""): string | undefined {
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    let fieldNo: number;
    let wireType: WireType;
    try {
      [fieldNo, wireType] = reader.tag();
    } catch {
      return undefined;
    }
    const field = schema.fields.find((f) => f.number === fieldNo);
    const path = prefix + (field ? field.name : `field ${fieldNo}`);
    const start = reader.pos;
    try {
      reader.skip(wireType, fieldNo);
    } catch {
      return path;
    }
    const nestedSchema = messageOf(field);
    if (nestedSchema && wireType === WireType.LengthDelimited) {
      const inner = new BinaryReader(bytes.subarray(start, reader.pos)).bytes();
      const nested = locateBadField(nestedSchema, inner, `${path}.`);
      if (nested !== undefined) return nested;
    }
  }
  return undefined;
}

function messageOf(field: DescField | undefined): DescMessage | undefined {
  if (field?.fieldKind === "message") return field.message;
  if (field?.fieldKind === "list" && field.listKind === "message") return field.message;
  return undefined;
}

const preEncoded = new WeakMap<object, Buffer>();

/**
 * Marks a response that never changes (a host's fixed facts): it is frozen, serialized now, and
 * those bytes are sent every time it is answered.
 */
export function constantResponse<T extends Message>(schema: DescMessage, message: T): T {
  preEncoded.set(deepFreeze(message), asBuffer(toBinary(schema, message)));
  return message;
}

/** What gives back the buffer of a response's lent bytes, by response. */
const lenders = new WeakMap<object, () => void>();
/** Responses whose lent bytes were serialized, and given back. */
const spent = new WeakSet<object>();

/**
 * Marks a response whose handler encoded it itself, from pieces it keeps (see
 * api/vm-page-encoding.ts): `bytes` are sent for it. The message must hold what the bytes do.
 *
 * With `giveBack`, the bytes are lent: they are the response's until it is serialized, which
 * grpc-js does once, copying the bytes into its own frame as soon as the serializer returns and
 * before any other code runs; so the serializer calls `giveBack`, and the buffer may be written
 * over from then on. The message then holds none of the bytes any more (its unknown fields are
 * dropped), and serializing it again is an error.
 */
export function encodedResponse<T extends Message>(message: T, bytes: Uint8Array, giveBack?: () => void): T {
  preEncoded.set(message, asBuffer(bytes));
  if (giveBack) lenders.set(message, giveBack);
  return message;
}

function serializeResponse(schema: DescMessage, message: object): Buffer {
  const bytes = preEncoded.get(message);
  if (!bytes) {
    // A lent response has no kept bytes left once serialized: only then can it be spent.
    if (spent.has(message)) throw new Error(`a ${schema.typeName} whose bytes were lent is serialized once`);
    return asBuffer(toBinary(schema, message as never));
  }
  const giveBack = lenders.get(message);
  if (giveBack) {
    lenders.delete(message);
    preEncoded.delete(message);
    spent.add(message);
    (message as Message).$unknown = undefined;
    giveBack();
  }
  return bytes;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** The same bytes as a Buffer, without copying them. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
