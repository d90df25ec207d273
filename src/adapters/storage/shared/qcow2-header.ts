/**
 * The few fields of a qcow2 image's header the driver reads itself, many times a call, where a
 * qemu-img process each time would cost more than the work (QEMU's docs/interop/qcow2.txt;
 * every field big-endian): the virtual size, the backing file's name, whether the image holds
 * any cluster of its own, and what would make it read or write another file than itself (an
 * external data file) or need a key (encryption): what an imported image must not have.
 */
import { constants, promises as fs } from "node:fs";
import type { FileHandle } from "node:fs/promises";

const MAGIC = 0x514649fb; // "QFI\xfb"
/** Version 2's header; version 3 adds the feature bits after it. */
const V2_HEADER_BYTES = 72;
const V3_HEADER_BYTES = 104;
/** Incompatible feature bit 2: the image's data are in another file, which the header names. */
const EXTERNAL_DATA_FILE = 1n << 2n;
/** Autoclear feature bit 0: QEMU keeps it set while the image's bitmaps extension is valid. */
const BITMAPS_EXTENSION = 1n;
/** QEMU refuses longer backing names too. */
const MAX_BACKING_NAME = 1023;

export interface Qcow2Header {
  /** The size the guest sees, in bytes. */
  sizeBytes: number;
  /** The backing file as the image names it (relative to the image's folder), or undefined. */
  backing: string | undefined;
  /** Whether no L2 table is allocated: the image holds no data of its own, all reads go to its backing. */
  empty: boolean;
  /** Whether its data are in an external data file (another file the image names). */
  externalData: boolean;
  /** Whether its clusters are encrypted (AES or LUKS): reading them needs a key. */
  encrypted: boolean;
  /** Whether it holds persistent dirty bitmaps (a valid bitmaps extension). */
  bitmaps: boolean;
}

/** The L1 table of an image past this many bytes (one of 64 TiB, with 64 KiB clusters) is not read: it counts as not empty. */
const MAX_L1_BYTES = 1024 * 1024;

async function noTableAllocated(handle: FileHandle, l1Entries: number, l1Offset: number): Promise<boolean> {
  if (l1Entries * 8 > MAX_L1_BYTES) return false;
  const l1 = Buffer.alloc(l1Entries * 8);
  if (l1Entries > 0) await handle.read(l1, 0, l1.length, l1Offset);
  return l1.every((byte) => byte === 0);
}

/** Reads the header of the qcow2 image at `file` (never through a symlink); throws when it is no qcow2 image. */
export async function readQcow2Header(file: string): Promise<Qcow2Header> {
  const handle = await fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const header = Buffer.alloc(V3_HEADER_BYTES);
    const { bytesRead } = await handle.read(header, 0, V3_HEADER_BYTES, 0);
    if (bytesRead < V2_HEADER_BYTES || header.readUInt32BE(0) !== MAGIC) throw new Error(`${file} is not a qcow2 image`);
    const version = header.readUInt32BE(4);
    const incompatible = version >= 3 && bytesRead >= V3_HEADER_BYTES ? header.readBigUInt64BE(72) : 0n;
    const autoclear = version >= 3 && bytesRead >= V3_HEADER_BYTES ? header.readBigUInt64BE(88) : 0n;
    const backingOffset = Number(header.readBigUInt64BE(8));
    const backingLength = header.readUInt32BE(16);
    const sizeBytes = Number(header.readBigUInt64BE(24));
    const l1Entries = header.readUInt32BE(36);
    const l1Offset = Number(header.readBigUInt64BE(40));
    let backing: string | undefined;
    if (backingOffset !== 0 && backingLength > 0) {
      if (backingLength > MAX_BACKING_NAME) throw new Error(`${file} names a backing file of ${backingLength} bytes`);
      const name = Buffer.alloc(backingLength);
      await handle.read(name, 0, backingLength, backingOffset);
      backing = name.toString("utf8");
    }
    return {
      sizeBytes,
      backing,
      empty: await noTableAllocated(handle, l1Entries, l1Offset),
      externalData: (incompatible & EXTERNAL_DATA_FILE) !== 0n,
      encrypted: header.readUInt32BE(32) !== 0,
      bitmaps: (autoclear & BITMAPS_EXTENSION) !== 0n,
    };
  } finally {
    await handle.close();
  }
}
