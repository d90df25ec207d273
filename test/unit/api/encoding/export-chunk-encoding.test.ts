import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ExportVolumeResponseSchema, VolumeService } from "../../../../gen/steward/v1/volume_service_pb";
import { ExportChunkMessages } from "../../../../src/api/encoding/export-chunk-encoding";
import { methodDefinition } from "../../../../src/server/grpc-definitions";

const MiB = 1024 * 1024;
const serialize = methodDefinition(VolumeService.method.exportVolume).responseSerialize;

function pattern(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 7 + seed) % 251;
  return bytes;
}

function expected(offset: number, data: Uint8Array): Uint8Array {
  return toBinary(ExportVolumeResponseSchema, create(ExportVolumeResponseSchema, { kind: { case: "chunk", value: { offset: BigInt(offset), data } } }));
}

describe("ExportChunkMessages", () => {
  it.each([
    ["at 0", 0, 4096],
    ["past 2 MiB", 2 * MiB + 512, 1000],
    ["past 2 GiB (the sign bit of 32)", 2 ** 31 + 512, 64],
    ["at the last offset of 32 bits", 2 ** 32 - 1, 1],
    ["past 4 GiB (an offset of more than 32 bits)", 5 * 1024 * MiB, 64],
    ["at the largest safe offset", Number.MAX_SAFE_INTEGER, 1],
    ["past 2 TiB", 2 ** 41 + 4096, 1],
    ["empty", 3 * MiB, 0],
    ["of 1 MiB", 7 * MiB, MiB],
  ])("writes a chunk %s as protobuf-es does", (_, offset, length) => {
    const data = pattern(length, offset % 13);
    const messages = new ExportChunkMessages(MiB);
    const message = messages.message(offset, data);
    const chunk = message.kind.case === "chunk" ? message.kind.value : undefined;
    expect(chunk?.offset).toBe(BigInt(offset));
    expect(Buffer.compare(chunk!.data, data)).toBe(0);
    const bytes = serialize(message);
    expect(Buffer.compare(bytes, Buffer.from(expected(offset, data)))).toBe(0);
    const decoded = fromBinary(ExportVolumeResponseSchema, bytes);
    expect(decoded.kind.case === "chunk" && decoded.kind.value.offset).toBe(BigInt(offset));
  });

  it("copies the data, so the caller may read the next chunk into the same buffer at once", () => {
    const messages = new ExportChunkMessages(MiB);
    const buffer = pattern(4096, 1);
    const first = messages.message(0, buffer);
    buffer.set(pattern(4096, 2));
    const second = messages.message(4096, buffer);
    expect(Buffer.compare(serialize(first), Buffer.from(expected(0, pattern(4096, 1))))).toBe(0);
    expect(Buffer.compare(serialize(second), Buffer.from(expected(4096, pattern(4096, 2))))).toBe(0);
  });

  it("writes the next chunk into the buffer of one grpc-js has framed, and never into one it has not", () => {
    const messages = new ExportChunkMessages(MiB);
    const first = messages.message(0, pattern(MiB, 1));
    const waiting = messages.message(MiB, pattern(MiB, 2));
    const firstBytes = serialize(first);
    expect(first.kind.case === "chunk" && first.kind.value.data.length).toBe(0);
    const third = serialize(messages.message(2 * MiB, pattern(MiB, 3)));
    // The first's buffer served the third; the second's, still waiting, kept its bytes.
    expect(third.buffer).toBe(firstBytes.buffer);
    expect(Buffer.compare(serialize(waiting), Buffer.from(expected(MiB, pattern(MiB, 2))))).toBe(0);
    expect(() => serialize(first)).toThrow(/serialized once/);
  });

  it("refuses a chunk larger than the export's chunks", () => {
    expect(() => new ExportChunkMessages(1024).message(0, new Uint8Array(2048))).toThrow(RangeError);
  });
});
