import { MEMORY_BLOCK_BYTES, MemoryStorageDriver } from "../../../../../src/adapters/storage/memory/memory-storage-driver";
import { DomainError } from "../../../../../src/core/errors";
import { poolFull } from "../../../../../src/ports/storage-errors";

const BLOCK = MEMORY_BLOCK_BYTES;

async function writeContent(driver: MemoryStorageDriver, vid: string, writes: readonly (readonly [number, number])[]): Promise<void> {
  const writer = await driver.openWrite(vid);
  try {
    for (const [offset, length] of writes) await writer.write(offset, new Uint8Array(length).fill(1));
    await writer.finish();
  } finally {
    await writer.abort();
  }
}

async function usedBlocks(driver: MemoryStorageDriver): Promise<number> {
  return (await driver.poolUsage()).usedBytes / BLOCK;
}

async function expectPoolFull(promise: Promise<unknown>, vid: string, capacityBytes: number): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (failure: unknown) => failure,
  );
  expect(error).toBeInstanceOf(DomainError);
  expect(error).toMatchObject({ kind: "resource-exhausted", reason: poolFull(vid, capacityBytes).reason, metadata: { vid, capacity_bytes: String(capacityBytes) } });
}

describe("MemoryStorageDriver", () => {
  it("allocates whole 64 KiB blocks, and reports them as extents and usage", async () => {
    const driver = new MemoryStorageDriver();
    await driver.create("v", 16 * BLOCK);
    await writeContent(driver, "v", [
      [BLOCK + 100, 1],
      [2 * BLOCK, 10],
      [10 * BLOCK - 1, 2],
    ]);
    const reader = await driver.openRead("v");
    expect(await reader.extents()).toEqual([
      { offset: 0, length: BLOCK, allocated: false },
      { offset: BLOCK, length: 2 * BLOCK, allocated: true },
      { offset: 3 * BLOCK, length: 6 * BLOCK, allocated: false },
      { offset: 9 * BLOCK, length: 2 * BLOCK, allocated: true },
      { offset: 11 * BLOCK, length: 5 * BLOCK, allocated: false },
    ]);
    await reader.close();
    expect(await driver.volumeUsage("v")).toMatchObject({ sizeBytes: 16 * BLOCK, allocatedBytes: 4 * BLOCK });
    expect(await driver.poolUsage()).toEqual({ usedBytes: 4 * BLOCK, capacityBytes: undefined, freeBytes: undefined });
  });

  it("ends the last extent at the volume's size, inside its block", async () => {
    const driver = new MemoryStorageDriver();
    await driver.create("v", BLOCK + 512);
    await writeContent(driver, "v", [[BLOCK, 512]]);
    const reader = await driver.openRead("v");
    expect(await reader.extents()).toEqual([
      { offset: 0, length: BLOCK, allocated: false },
      { offset: BLOCK, length: 512, allocated: true },
    ]);
    await reader.close();
  });

  it("counts blocks shared by revisions and clones once in the pool, and for each volume", async () => {
    const driver = new MemoryStorageDriver();
    await driver.create("v", 16 * BLOCK);
    await writeContent(driver, "v", [[0, 2 * BLOCK]]);
    const revision = await driver.snapshot("v");
    await driver.clone("v", "copy");
    await driver.resize("copy", 32 * BLOCK);
    expect(await usedBlocks(driver)).toBe(2);
    expect((await driver.volumeUsage("copy")).allocatedBytes).toBe(2 * BLOCK);

    await writeContent(driver, "v", [[0, 3 * BLOCK]]);
    expect(await usedBlocks(driver)).toBe(5);
    await driver.delete("copy");
    expect(await usedBlocks(driver)).toBe(5);
    expect(await driver.deleteRevision("v", revision.id)).toBe(true);
    expect(await usedBlocks(driver)).toBe(3);
    await driver.delete("v");
    expect(await usedBlocks(driver)).toBe(0);
  });

  it("stamps revisions with its clock", async () => {
    const time = new Date("2030-01-02T03:04:05Z");
    const driver = new MemoryStorageDriver({ clock: { now: () => time } });
    await driver.create("v", BLOCK);
    expect((await driver.snapshot("v")).createdAt).toEqual(time);
  });

  describe("with a capacity", () => {
    const capacityBytes = 4 * BLOCK;
    let driver: MemoryStorageDriver;
    beforeEach(async () => {
      driver = new MemoryStorageDriver({ capacityBytes });
      await driver.create("v", 16 * BLOCK);
    });

    it("reports it", async () => {
      expect(await driver.poolUsage()).toEqual({ usedBytes: 0, capacityBytes, freeBytes: capacityBytes });
    });

    it("refuses a write that needs more blocks than are free, whole, and the writer can go on", async () => {
      await writeContent(driver, "v", [[0, 3 * BLOCK]]);
      const writer = await driver.openWrite("v");
      await expectPoolFull(writer.write(0, new Uint8Array(2 * BLOCK)), "v", capacityBytes);
      expect(await usedBlocks(driver)).toBe(3);
      await writer.write(0, new Uint8Array(BLOCK));
      await writer.write(100, new Uint8Array(BLOCK - 100));
      await expectPoolFull(writer.write(BLOCK, new Uint8Array(1)), "v", capacityBytes);
      await writer.abort();
      expect(await usedBlocks(driver)).toBe(3);
    });

    it("counts what a writer holds until it finishes: an import needs room beside the content it replaces", async () => {
      await writeContent(driver, "v", [[0, 2 * BLOCK]]);
      await writeContent(driver, "v", [[0, 2 * BLOCK]]);
      expect(await usedBlocks(driver)).toBe(2);
      await expectPoolFull(writeContent(driver, "v", [[0, 3 * BLOCK]]), "v", capacityBytes);
      expect(await usedBlocks(driver)).toBe(2);
    });

    it("makes and clones volumes in a full pool, since they allocate nothing, but refuses their writes", async () => {
      await writeContent(driver, "v", [[0, 4 * BLOCK]]);
      await driver.create("new", 16 * BLOCK);
      await driver.clone("v", "copy");
      expect(await usedBlocks(driver)).toBe(4);
      await expectPoolFull(writeContent(driver, "copy", [[0, 1]]), "copy", capacityBytes);
      await expectPoolFull(writeContent(driver, "new", [[0, 1]]), "new", capacityBytes);
    });

    it("frees the room of a deleted revision", async () => {
      await writeContent(driver, "v", [[0, 2 * BLOCK]]);
      const revision = await driver.snapshot("v");
      await writeContent(driver, "v", [[0, 2 * BLOCK]]);
      await expectPoolFull(writeContent(driver, "v", [[0, 1]]), "v", capacityBytes);
      await driver.deleteRevision("v", revision.id);
      await writeContent(driver, "v", [[0, 2 * BLOCK]]);
      expect(await usedBlocks(driver)).toBe(2);
    });
  });

  it("refuses a capacity that is not a byte count", () => {
    expect(() => new MemoryStorageDriver({ capacityBytes: -1 })).toThrow(RangeError);
    expect(() => new MemoryStorageDriver({ capacityBytes: 1.5 })).toThrow(RangeError);
  });
});
