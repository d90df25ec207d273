/**
 * An empty qcow2 image, laid out as `qemu-img create -f qcow2 [-u -b <backing> -F qcow2]` lays it
 * out (QEMU's docs/interop/qcow2.txt, version 3, 64 KiB clusters, 16-bit refcounts; no table of
 * feature names, which is optional), of a size in whole sectors as every volume's is, without a
 * qemu-img process: snapshots, clones, start-time snapshots and fresh volatile volumes make one
 * each, and the process alone would take most of their time. Its layout is fixed: the header
 * (with the backing file's format and name, for an overlay), the refcount table, one refcount
 * block, and an L1 table of zeroes; nothing is allocated, so every read goes to the backing file,
 * or reads zeroes. Tests hold it to `qemu-img check` and `qemu-img info`. Images of any other
 * kind (converted, encrypted) are still made by qemu-img.
 */
import { promises as fs } from "node:fs";

const MAGIC = 0x514649fb; // "QFI\xfb"
const CLUSTER_BITS = 16;
const CLUSTER = 1 << CLUSTER_BITS;
/** An L2 table (a cluster of 8-byte entries) maps this many bytes. */
const L2_COVERS = CLUSTER * (CLUSTER / 8);
/** Version 3's header, to its compression type and padding (header_length). */
const HEADER_BYTES = 112;
/** Refcounts of 2^4 = 16 bits: a refcount block counts this many clusters. */
const REFCOUNT_ORDER = 4;
/** Header extension: the backing file's format. */
const BACKING_FORMAT_EXTENSION = 0xe2792aca;
const MAX_BACKING_NAME = 1023;
/** QEMU's own bound on an L1 table (QCOW_MAX_L1_SIZE): 2 PiB of volume with 64 KiB clusters. */
const MAX_L1_BYTES = 32 * 1024 * 1024;

/** A size past what a qcow2 image of this layout holds, as qemu-img refuses it. */
export class Qcow2TooLargeError extends Error {
  constructor(sizeBytes: number) {
    super(`a qcow2 image holds at most ${(MAX_L1_BYTES / 8) * L2_COVERS} bytes, not ${sizeBytes}`);
    this.name = "Qcow2TooLargeError";
  }
}

/** The clusters of the image, in order: header, refcount table, refcount block, then the L1 table's. */
const REFCOUNT_TABLE_CLUSTER = 1;
const REFCOUNT_BLOCK_CLUSTER = 2;
const L1_CLUSTER = 3;

/**
 * Writes at `file` (which must not exist) an empty qcow2 image of `sizeBytes` backed by the qcow2
 * image `backing`, named as the overlay will find it (relative to the overlay's folder).
 */
export async function writeQcow2Overlay(file: string, backing: string, sizeBytes: number): Promise<void> {
  const name = Buffer.from(backing, "utf8");
  if (name.length === 0 || name.length > MAX_BACKING_NAME) throw new Error(`a backing file's name is 1 to ${MAX_BACKING_NAME} bytes, not ${name.length}`);
  await writeEmpty(file, sizeBytes, name);
}

/** Writes at `file` (which must not exist) an empty qcow2 image of `sizeBytes`, all zeroes, backed by nothing. */
export async function writeEmptyQcow2(file: string, sizeBytes: number): Promise<void> {
  await writeEmpty(file, sizeBytes, undefined);
}

async function writeEmpty(file: string, sizeBytes: number, name: Buffer | undefined): Promise<void> {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0) throw new Error(`not a size: ${sizeBytes}`);
  const l1Entries = Math.ceil(sizeBytes / L2_COVERS);
  if (l1Entries * 8 > MAX_L1_BYTES) throw new Qcow2TooLargeError(sizeBytes);
  // An image of no bytes has no L1 table (offset 0), as qemu-img makes it. At most 512 clusters
  // of L1 table otherwise: one refcount block counts them all.
  const l1Offset = l1Entries === 0 ? 0 : L1_CLUSTER * CLUSTER;
  const clusters = L1_CLUSTER + Math.ceil((l1Entries * 8) / CLUSTER);

  const header = Buffer.alloc(CLUSTER);
  // An overlay says its backing file's format; the end mark ends the extensions (zeroes: type 0, length 0).
  const extensions = name === undefined ? Buffer.alloc(8) : backingFormat(HEADER_BYTES);
  const nameOffset = HEADER_BYTES + extensions.length;
  header.writeUInt32BE(MAGIC, 0);
  header.writeUInt32BE(3, 4); // version
  if (name !== undefined) {
    header.writeBigUInt64BE(BigInt(nameOffset), 8); // backing_file_offset
    header.writeUInt32BE(name.length, 16); // backing_file_size
  }
  header.writeUInt32BE(CLUSTER_BITS, 20);
  header.writeBigUInt64BE(BigInt(sizeBytes), 24);
  header.writeUInt32BE(0, 32); // crypt_method: none
  header.writeUInt32BE(l1Entries, 36);
  header.writeBigUInt64BE(BigInt(l1Offset), 40); // l1_table_offset
  header.writeBigUInt64BE(BigInt(REFCOUNT_TABLE_CLUSTER * CLUSTER), 48); // refcount_table_offset
  header.writeUInt32BE(1, 56); // refcount_table_clusters
  // nb_snapshots, snapshots_offset, and the feature bits (incompatible, compatible, autoclear): all 0.
  header.writeUInt32BE(REFCOUNT_ORDER, 96);
  header.writeUInt32BE(HEADER_BYTES, 100); // header_length; compression type 0 (zlib) and padding follow
  extensions.copy(header, HEADER_BYTES);
  name?.copy(header, nameOffset);

  const refcountTable = Buffer.alloc(CLUSTER);
  refcountTable.writeBigUInt64BE(BigInt(REFCOUNT_BLOCK_CLUSTER * CLUSTER), 0);
  const refcountBlock = Buffer.alloc(CLUSTER);
  for (let cluster = 0; cluster < clusters; cluster++) refcountBlock.writeUInt16BE(1, cluster * 2);

  const metadata = Buffer.concat([header, refcountTable, refcountBlock]);
  const handle = await fs.open(file, "wx", 0o600);
  try {
    // A write may take fewer bytes than asked (a filesystem nearly full): the rest is written, or fails (ENOSPC).
    for (let done = 0; done < metadata.length; ) done += (await handle.write(metadata, done, metadata.length - done, done)).bytesWritten;
    // The L1 table is zeroes: the file only reaches to its end, as qemu-img leaves it.
    await handle.truncate(L1_CLUSTER * CLUSTER + l1Entries * 8);
    // On disk before it is renamed or linked into a volume's place, as qemu-img flushes an image it closes.
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/** The header extensions: the backing file's format (qcow2), then the end mark, each padded to 8 bytes. */
function backingFormat(at: number): Buffer {
  const format = Buffer.from("qcow2");
  const extension = Buffer.alloc(8 + 8 + 8); // type and length, "qcow2" padded, end mark
  extension.writeUInt32BE(BACKING_FORMAT_EXTENSION, 0);
  extension.writeUInt32BE(format.length, 4);
  format.copy(extension, 8);
  if ((at + extension.length) % 8 !== 0) throw new Error("header extensions are 8-byte aligned");
  return extension;
}
