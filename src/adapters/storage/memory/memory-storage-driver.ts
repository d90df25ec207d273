import { systemClock, type Clock } from "../../../ports/clock";
import {
  bufferFor,
  isValidVid,
  type CheapClone,
  type Extent,
  type PoolUsage,
  type Revision,
  type StorageDriver,
  type VolumeReader,
  type VolumeUsage,
  type VolumeWriter,
} from "../../../ports/storage-driver";
import { invalidVid, invalidVolumeSize, outOfRange, poolFull, revisionNotFound, shrinkRefused, volumeExists, volumeNotFound } from "../../../ports/storage-errors";

/** What one write allocates at least, and so the grain of extents and usage: qcow2's default cluster. */
export const MEMORY_BLOCK_BYTES = 64 * 1024;

/**
 * A content's blocks by index; a missing index is a hole. A map is changed only by the writer
 * that made it, before finish() publishes it, and a block is never changed at all: a write puts
 * a new block in its place. So volumes, revisions and clones share maps instead of copying.
 */
type Blocks = ReadonlyMap<number, Uint8Array>;

/**
 * One content of a volume, immutable. The bytes of its last block past sizeBytes are zeroes (no
 * write reaches them, and sizes never shrink), so growing a content keeps its map.
 */
interface Content {
  readonly sizeBytes: number;
  readonly blocks: Blocks;
}

interface SavedRevision {
  revision: Revision;
  content: Content;
}

interface MemoryVolume {
  content: Content;
  revisions: SavedRevision[];
}

export interface MemoryStorageDriverOptions {
  /** The most bytes the pool's blocks may take; 0 or absent for no limit. */
  capacityBytes?: number;
  /** Stamps revisions. */
  clock?: Clock;
}

const NO_BLOCKS: Blocks = new Map();

/**
 * Counts the blocks that the pool holds, each map once however many volumes, revisions and
 * writers share it, so that the pool's usage and capacity count shared bytes once.
 */
class BlockAccount {
  private readonly holders = new Map<Blocks, number>();
  /** Blocks of the maps held, a writer's included as it grows. */
  blocks = 0;

  hold(blocks: Blocks): void {
    const holders = this.holders.get(blocks) ?? 0;
    if (holders === 0) this.blocks += blocks.size;
    this.holders.set(blocks, holders + 1);
  }

  release(blocks: Blocks): void {
    const holders = (this.holders.get(blocks) ?? 0) - 1;
    if (holders > 0) {
      this.holders.set(blocks, holders);
    } else {
      this.holders.delete(blocks);
      this.blocks -= blocks.size;
    }
  }
}

/**
 * A pool whose volumes live in the memory of this process, gone when it ends: for tests, and for
 * trying Steward out. Volumes are sparse maps of immutable 64 KiB blocks, so snapshots, reverts
 * and clones cost no copy; a write allocates whole blocks, and zeroes written stay allocated, as
 * in a file.
 */
export class MemoryStorageDriver implements StorageDriver, CheapClone {
  readonly format = "raw";
  private readonly volumes = new Map<string, MemoryVolume>();
  private readonly account = new BlockAccount();
  private readonly capacityBytes: number;
  private readonly clock: Clock;
  /** Revision ids count up for the life of the driver, so none is ever given twice. */
  private lastRevision = 0;
  /** Stamps of contents (volumeUsage), by identity. */
  private readonly stamps = new WeakMap<Content, number>();
  private lastStamp = 0;

  constructor(options: MemoryStorageDriverOptions = {}) {
    const capacityBytes = options.capacityBytes ?? 0;
    if (!Number.isSafeInteger(capacityBytes) || capacityBytes < 0) throw new RangeError(`capacityBytes must be a byte count, not ${capacityBytes}`);
    this.capacityBytes = capacityBytes;
    this.clock = options.clock ?? systemClock;
  }

  hostPath(): undefined {
    return undefined;
  }

  async create(vid: string, sizeBytes: number): Promise<void> {
    checkVid(vid);
    checkSize(vid, sizeBytes);
    if (this.volumes.has(vid)) throw volumeExists(vid);
    this.volumes.set(vid, this.newVolume({ sizeBytes, blocks: NO_BLOCKS }));
  }

  async delete(vid: string): Promise<boolean> {
    checkVid(vid);
    const volume = this.volumes.get(vid);
    if (!volume) return false;
    this.volumes.delete(vid);
    this.account.release(volume.content.blocks);
    for (const saved of volume.revisions) this.account.release(saved.content.blocks);
    return true;
  }

  async list(): Promise<string[]> {
    return [...this.volumes.keys()].sort();
  }

  async resize(vid: string, sizeBytes: number): Promise<void> {
    const volume = this.volume(vid);
    checkSize(vid, sizeBytes);
    if (sizeBytes < volume.content.sizeBytes) throw shrinkRefused(vid, volume.content.sizeBytes, sizeBytes);
    this.replaceContent(volume, { sizeBytes, blocks: volume.content.blocks });
  }

  async snapshot(vid: string): Promise<Revision> {
    const volume = this.volume(vid);
    this.lastRevision += 1;
    const revision: Revision = { id: String(this.lastRevision), createdAt: this.clock.now(), sizeBytes: volume.content.sizeBytes };
    this.account.hold(volume.content.blocks);
    volume.revisions.push({ revision, content: volume.content });
    return { ...revision };
  }

  async revert(vid: string, revision: string): Promise<void> {
    const volume = this.volume(vid);
    this.replaceContent(volume, savedRevision(vid, volume, revision).content);
  }

  async revisions(vid: string): Promise<Revision[]> {
    return this.volume(vid).revisions.map((saved) => ({ ...saved.revision }));
  }

  async deleteRevision(vid: string, revision: string): Promise<boolean> {
    const volume = this.volume(vid);
    const index = volume.revisions.findIndex((saved) => saved.revision.id === revision);
    if (index < 0) return false;
    const [saved] = volume.revisions.splice(index, 1);
    this.account.release(saved.content.blocks);
    return true;
  }

  async openRead(vid: string, revision?: string): Promise<VolumeReader> {
    const volume = this.volume(vid);
    const content = revision === undefined ? volume.content : savedRevision(vid, volume, revision).content;
    return new MemoryVolumeReader(vid, content);
  }

  async openWrite(vid: string, sizeBytes?: number): Promise<VolumeWriter> {
    const volume = this.volume(vid);
    if (sizeBytes !== undefined) checkSize(vid, sizeBytes);
    const blocks = new Map<number, Uint8Array>();
    this.account.hold(blocks);
    return new MemoryVolumeWriter(vid, sizeBytes ?? volume.content.sizeBytes, blocks, {
      reserve: (count) => this.reserveBlocks(vid, count),
      publish: (content) => this.publish(vid, volume, content),
      release: () => this.account.release(blocks),
    });
  }

  async volumeUsage(vid: string): Promise<VolumeUsage> {
    const { content } = this.volume(vid);
    return { sizeBytes: content.sizeBytes, allocatedBytes: content.blocks.size * MEMORY_BLOCK_BYTES, stamp: this.stampOf(content) };
  }

  async poolUsage(): Promise<PoolUsage> {
    const usedBytes = this.account.blocks * MEMORY_BLOCK_BYTES;
    const bounded = this.capacityBytes > 0;
    return { usedBytes, capacityBytes: bounded ? this.capacityBytes : undefined, freeBytes: bounded ? Math.max(0, this.capacityBytes - usedBytes) : undefined };
  }

  async clone(sourceVid: string, targetVid: string): Promise<void> {
    const { content } = this.volume(sourceVid);
    checkVid(targetVid);
    const target = this.volumes.get(targetVid);
    if (target) this.replaceContent(target, content);
    else this.volumes.set(targetVid, this.newVolume(content));
  }

  private volume(vid: string): MemoryVolume {
    checkVid(vid);
    const volume = this.volumes.get(vid);
    if (!volume) throw volumeNotFound(vid);
    return volume;
  }

  /** A content's stamp: contents are immutable, so each one is told apart by its identity. */
  private stampOf(content: Content): string {
    let stamp = this.stamps.get(content);
    if (stamp === undefined) this.stamps.set(content, (stamp = ++this.lastStamp));
    return String(stamp);
  }

  private newVolume(content: Content): MemoryVolume {
    this.account.hold(content.blocks);
    return { content, revisions: [] };
  }

  /** Holds the new content before releasing the old, since they may share their blocks. */
  private replaceContent(volume: MemoryVolume, content: Content): void {
    this.account.hold(content.blocks);
    this.account.release(volume.content.blocks);
    volume.content = content;
  }

  /** Counts `count` more blocks for a writer, or refuses them all when the pool has no room. */
  private reserveBlocks(vid: string, count: number): void {
    const blocks = this.account.blocks + count;
    if (this.capacityBytes > 0 && blocks * MEMORY_BLOCK_BYTES > this.capacityBytes) throw poolFull(vid, this.capacityBytes);
    this.account.blocks = blocks;
  }

  /** A writer's content becomes the volume's, unless the volume was deleted (or deleted and made again) meanwhile. */
  private publish(vid: string, volume: MemoryVolume, content: Content): void {
    if (this.volumes.get(vid) !== volume) throw volumeNotFound(vid);
    this.replaceContent(volume, content);
  }
}

/** What a writer needs from its driver. */
interface WriterPool {
  /** Counts new blocks against the capacity; throws when there is no room. */
  reserve(count: number): void;
  publish(content: Content): void;
  /** Drops the writer's hold on its blocks. */
  release(): void;
}

class MemoryVolumeWriter implements VolumeWriter {
  private closed = false;

  constructor(
    private readonly vid: string,
    private readonly sizeBytes: number,
    private readonly blocks: Map<number, Uint8Array>,
    private readonly pool: WriterPool,
  ) {}

  async write(offset: number, bytes: Uint8Array): Promise<void> {
    this.checkOpen();
    checkRange(this.vid, offset, bytes.length, this.sizeBytes);
    const spans = blockSpans(offset, bytes.length);
    // Room first, for every new block at once, so that a refused write changes nothing.
    this.pool.reserve(spans.filter((span) => !this.blocks.has(span.index)).length);
    for (const span of spans) this.blocks.set(span.index, this.writtenBlock(span, bytes.subarray(span.start - offset, span.end - offset)));
  }

  async finish(): Promise<void> {
    this.checkOpen();
    this.closed = true;
    try {
      this.pool.publish({ sizeBytes: this.sizeBytes, blocks: this.blocks });
    } finally {
      this.pool.release();
    }
  }

  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pool.release();
  }

  /** A new block: the old one's bytes (or zeroes) with `bytes` over the span. */
  private writtenBlock(span: BlockSpan, bytes: Uint8Array): Uint8Array {
    const block = new Uint8Array(MEMORY_BLOCK_BYTES);
    const old = this.blocks.get(span.index);
    if (old) block.set(old);
    block.set(bytes, span.start - span.index * MEMORY_BLOCK_BYTES);
    return block;
  }

  private checkOpen(): void {
    if (this.closed) throw new Error(`the writer of ${this.vid} is closed: it was finished or aborted`);
  }
}

class MemoryVolumeReader implements VolumeReader {
  readonly sizeBytes: number;
  private closed = false;

  constructor(
    private readonly vid: string,
    private readonly content: Content,
  ) {
    this.sizeBytes = content.sizeBytes;
  }

  async extents(): Promise<Extent[]> {
    this.checkOpen();
    return extentsOf(this.content);
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    this.checkOpen();
    checkRange(this.vid, offset, length, this.sizeBytes);
    const bytes = into ? bufferFor(into, length).fill(0) : new Uint8Array(length);
    for (const span of blockSpans(offset, length)) {
      const block = this.content.blocks.get(span.index);
      const blockStart = span.index * MEMORY_BLOCK_BYTES;
      if (block) bytes.set(block.subarray(span.start - blockStart, span.end - blockStart), span.start - offset);
    }
    return bytes;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private checkOpen(): void {
    if (this.closed) throw new Error(`the reader of ${this.vid} is closed`);
  }
}

/** The part of a byte range that falls in one block. */
interface BlockSpan {
  index: number;
  start: number;
  end: number;
}

function blockSpans(offset: number, length: number): BlockSpan[] {
  const spans: BlockSpan[] = [];
  for (let start = offset; start < offset + length; ) {
    const index = Math.floor(start / MEMORY_BLOCK_BYTES);
    const end = Math.min(offset + length, (index + 1) * MEMORY_BLOCK_BYTES);
    spans.push({ index, start, end });
    start = end;
  }
  return spans;
}

/** The allocated blocks as runs, neighbours merged, with the holes between them, up to the size. */
function extentsOf(content: Content): Extent[] {
  const extents: Extent[] = [];
  const add = (offset: number, end: number, allocated: boolean) => {
    const last = extents[extents.length - 1];
    if (last && last.allocated === allocated) last.length = end - last.offset;
    else extents.push({ offset, length: end - offset, allocated });
  };
  let position = 0;
  for (const index of [...content.blocks.keys()].sort((a, b) => a - b)) {
    const start = index * MEMORY_BLOCK_BYTES;
    if (start > position) add(position, start, false);
    position = Math.min(start + MEMORY_BLOCK_BYTES, content.sizeBytes);
    add(start, position, true);
  }
  if (position < content.sizeBytes) add(position, content.sizeBytes, false);
  return extents;
}

function savedRevision(vid: string, volume: MemoryVolume, revision: string): SavedRevision {
  const saved = volume.revisions.find((candidate) => candidate.revision.id === revision);
  if (!saved) throw revisionNotFound(vid, revision);
  return saved;
}

function checkVid(vid: string): void {
  if (!isValidVid(vid)) throw invalidVid(vid);
}

function checkSize(vid: string, sizeBytes: number): void {
  if (!isByteCount(sizeBytes)) throw invalidVolumeSize(vid, sizeBytes);
}

function checkRange(vid: string, offset: number, length: number, sizeBytes: number): void {
  if (!isByteCount(offset) || !isByteCount(length) || offset + length > sizeBytes) throw outOfRange(vid, offset, length, sizeBytes);
}

function isByteCount(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}
