import { WireType } from "@bufbuild/protobuf/wire";

/*
 * Protobuf wire format written by hand where protobuf-es' way costs too much on a hot path
 * (see vm-page-encoding.ts and vm-encoding.ts); what is written is checked against
 * protobuf-es by the tests.
 */

// Read once: the module's exports are getters, and these are read for every field.
export const LENGTH_DELIMITED = WireType.LengthDelimited;
export const VARINT = WireType.Varint;

export function tag(no: number, wireType: WireType): number {
  return ((no << 3) | wireType) >>> 0;
}

export function varintSize(value: number): number {
  let size = 1;
  while (value > 0x7f) {
    value >>>= 7;
    size++;
  }
  return size;
}

/** The size of the varint WireWriter.int64 writes for a whole number up to 2^53 (past 32 bits, as offsets past 4 GiB). */
export function int64Size(value: number): number {
  let size = 1;
  for (let rest = value; rest >= 0x80; rest = Math.floor(rest / 0x80)) size++;
  return size;
}

export function piecesLength(pieces: readonly Uint8Array[]): number {
  let length = 0;
  for (const piece of pieces) length += piece.length;
  return length;
}

/** The size of a length-delimited field made of these pieces, with its tag and length. */
export function lengthDelimitedSize(no: number, pieces: readonly Uint8Array[]): number {
  const length = piecesLength(pieces);
  return varintSize(tag(no, LENGTH_DELIMITED)) + varintSize(length) + length;
}

/** Fields written into a buffer that grows as needed (never, when sized right at the start). */
export class WireWriter {
  private buffer: Buffer;
  private at = 0;

  /** Writes into a buffer of this size, or into this buffer (growing out of it if need be). */
  constructor(sizeOrBuffer: number | Buffer) {
    this.buffer = typeof sizeOrBuffer === "number" ? Buffer.allocUnsafe(sizeOrBuffer) : sizeOrBuffer;
  }

  /** Writes from the start again, over what was written. */
  reset(): void {
    this.at = 0;
  }

  tag(no: number, wireType: WireType): void {
    this.varint(tag(no, wireType));
  }

  varint(value: number): void {
    this.reserve(5);
    while (value > 0x7f) {
      this.buffer[this.at++] = (value & 0x7f) | 0x80;
      value >>>= 7;
    }
    this.buffer[this.at++] = value;
  }

  /** An int64 varint: past 32 bits, and negative numbers as their 64-bit two's complement. */
  int64(value: number): void {
    if (value >= 0 && value <= 0xffffffff) {
      this.varint(value);
      return;
    }
    this.reserve(10);
    let rest = BigInt.asUintN(64, BigInt(value));
    while (rest > 0x7fn) {
      this.buffer[this.at++] = Number(rest & 0x7fn) | 0x80;
      rest >>= 7n;
    }
    this.buffer[this.at++] = Number(rest);
  }

  /** A length-prefixed string: short ASCII ones (names, addresses, numbers) byte by byte. */
  string(text: string): void {
    const length = text.length;
    if (length < 0x80) {
      this.reserve(length + 1);
      const start = this.at;
      let i = 0;
      while (i < length) {
        const code = text.charCodeAt(i);
        if (code > 0x7f) break;
        this.buffer[start + 1 + i++] = code;
      }
      if (i === length) {
        this.buffer[start] = length;
        this.at = start + 1 + length;
        return;
      }
    }
    const bytes = Buffer.byteLength(text, "utf8");
    this.varint(bytes);
    this.reserve(bytes);
    this.at += this.buffer.write(text, this.at, bytes, "utf8");
  }

  bytes(chunk: Uint8Array): void {
    this.reserve(chunk.length);
    this.buffer.set(chunk, this.at);
    this.at += chunk.length;
  }

  /** A length-delimited field made of these pieces; returns where its value (length and bytes) lies. */
  lengthDelimited(no: number, pieces: readonly Uint8Array[]): { start: number; end: number } {
    this.tag(no, LENGTH_DELIMITED);
    const start = this.at;
    this.varint(piecesLength(pieces));
    for (const piece of pieces) this.bytes(piece);
    return { start, end: this.at };
  }

  /** Starts a length-delimited value of unknown length: room for a one-byte length. */
  fork(): number {
    this.reserve(1);
    return this.at++;
  }

  /** Ends the value `fork` started, writing its length (moving the value along if it needs more room). */
  join(start: number): void {
    const length = this.at - start - 1;
    const size = varintSize(length);
    if (size > 1) {
      this.reserve(size - 1);
      this.buffer.copyWithin(start + size, start + 1, this.at);
      this.at += size - 1;
    }
    let at = start;
    let rest = length;
    while (rest > 0x7f) {
      this.buffer[at++] = (rest & 0x7f) | 0x80;
      rest >>>= 7;
    }
    this.buffer[at] = rest;
  }

  /** What was written: a view of the writer's buffer, valid until it writes again. */
  written(): Uint8Array {
    return this.buffer.subarray(0, this.at);
  }

  /** A copy of what was written, to keep. */
  copyWritten(): Uint8Array {
    return new Uint8Array(this.written());
  }

  private reserve(size: number): void {
    if (this.at + size <= this.buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.at + size));
    this.buffer.copy(grown, 0, 0, this.at);
    this.buffer = grown;
  }
}
