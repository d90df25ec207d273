import { create } from "@bufbuild/protobuf";
import { ExportVolumeChunkSchema, ExportVolumeResponseSchema, type ExportVolumeResponse } from "../../../gen/steward/v1/volume_service_pb";
import { encodedResponse } from "../../server/grpc-definitions";
import { int64Size, LENGTH_DELIMITED, tag, VARINT, varintSize, WireWriter } from "./wire-writer";

/*
 * ExportVolume's chunks, written by hand into buffers lent to their responses. protobuf-es
 * writes a 1 MiB chunk through a buffer it grows, then copies it out; with grpc-js' own frame
 * that made three allocations of 1 MiB per MiB sent, and the collector ran a full collection
 * every 20 MiB or so, costing the server more than the bytes did. Here a chunk's bytes are
 * copied once, into a buffer the export gets back as soon as grpc-js has framed them.
 */

const CHUNK = ExportVolumeResponseSchema.field.chunk.number;
const OFFSET = ExportVolumeChunkSchema.field.offset.number;
const DATA = ExportVolumeChunkSchema.field.data.number;
/** A chunk message's bytes besides its data: two tags and two lengths (5 bytes each at most), an offset (10 at most). */
const FRAMING_BYTES = 32;
const NO_BYTES = new Uint8Array(0);

/**
 * The chunk messages of one export. Its buffers serve again once grpc-js has copied them; as
 * many exist as chunks wait in the call's write queue (16: the highWaterMark of Node's object
 * streams, which grpc-js keeps), and they go with the export.
 */
export class ExportChunkMessages {
  private readonly free: Buffer[] = [];
  private readonly capacity: number;

  /** For chunks of at most `chunkBytes`. */
  constructor(chunkBytes: number) {
    this.capacity = chunkBytes + FRAMING_BYTES;
  }

  /** The ExportVolumeResponse of a chunk; `data` is copied, and the caller may reuse its buffer at once. */
  message(offset: number, data: Uint8Array): ExportVolumeResponse {
    const chunkLength = (offset === 0 ? 0 : 1 + int64Size(offset)) + (data.length === 0 ? 0 : 1 + varintSize(data.length) + data.length);
    const buffer = this.take(varintSize(tag(CHUNK, LENGTH_DELIMITED)) + varintSize(chunkLength) + chunkLength);
    const out = new WireWriter(buffer);
    out.tag(CHUNK, LENGTH_DELIMITED);
    out.varint(chunkLength);
    if (offset !== 0) {
      out.tag(OFFSET, VARINT);
      out.int64(offset);
    }
    if (data.length > 0) {
      out.tag(DATA, LENGTH_DELIMITED);
      out.varint(data.length);
      out.bytes(data);
    }
    const bytes = out.written();
    const chunk = create(ExportVolumeChunkSchema, { offset: BigInt(offset), data: bytes.subarray(bytes.length - data.length) });
    const response = create(ExportVolumeResponseSchema, { kind: { case: "chunk", value: chunk } });
    return encodedResponse(response, bytes, () => {
      // The buffer is written over from now on: the message no longer holds its bytes.
      chunk.data = NO_BYTES;
      this.free.push(buffer);
    });
  }

  private take(size: number): Buffer {
    if (size > this.capacity) throw new RangeError(`a chunk message of ${size} bytes, past the ${this.capacity} this export's buffers hold`);
    return this.free.pop() ?? Buffer.allocUnsafe(this.capacity);
  }
}
