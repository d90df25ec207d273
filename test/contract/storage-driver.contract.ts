/**
 * What every storage driver must do, in the manner of containerd's snapshots testsuite: each
 * driver's test is one call of storageDriverContract, with a factory that makes a fresh, empty
 * pool for each test and a cleanup that removes it (run even when the test fails).
 */
import { DomainError, type ErrorKind } from "../../src/core/errors";
import { canCloneCheaply, type Extent, type Revision, type StorageDriver } from "../../src/ports/storage-driver";
import {
  invalidVid,
  invalidVolumeSize,
  outOfRange,
  revisionNotFound,
  shrinkRefused,
  volumeExists,
  volumeNotFound,
} from "../../src/ports/storage-errors";

export interface StorageDriverUnderTest {
  driver: StorageDriver;
  cleanup(): Promise<void>;
}

/** What the driver claims to offer beyond the port; the suite checks the claim, then what it offers. */
export interface StorageDriverCapabilities {
  cheapClone: boolean;
}

const KiB = 1024;
const MiB = 1024 * KiB;
/** Large enough that a filesystem block or a qcow2 cluster around a write leaves most of it a hole. */
const SIZE = 16 * MiB;

const NOT_FOUND = volumeNotFound("v");

export function storageDriverContract(
  name: string,
  factory: () => Promise<StorageDriverUnderTest>,
  capabilities: StorageDriverCapabilities = { cheapClone: false },
): void {
  describe(`the ${name} storage driver`, () => {
    let driver: StorageDriver;
    let cleanup: (() => Promise<void>) | undefined;

    beforeEach(async () => {
      const made = await factory();
      driver = made.driver;
      cleanup = () => made.cleanup();
    });

    afterEach(async () => {
      const done = cleanup;
      cleanup = undefined;
      await done?.();
    });

    describe("volumes", () => {
      it("are made all zeroes and all hole, of the size asked", async () => {
        await driver.create("v", SIZE);
        const reader = await driver.openRead("v");
        try {
          expect(reader.sizeBytes).toBe(SIZE);
          expect(await reader.extents()).toEqual([{ offset: 0, length: SIZE, allocated: false }]);
          expectZeroes(await reader.read(0, 128 * KiB));
          expectZeroes(await reader.read(SIZE - 4 * KiB, 4 * KiB));
        } finally {
          await reader.close();
        }
        expect(await driver.volumeUsage("v")).toMatchObject({ sizeBytes: SIZE });
      });

      it("are read into the caller's buffer when it gives one, holes as zeroes whatever it held", async () => {
        await driver.create("v", SIZE);
        await writeContent(driver, "v", [[64 * KiB, pattern(4 * KiB, 3)]]);
        const reader = await driver.openRead("v");
        try {
          const buffer = new Uint8Array(128 * KiB).fill(0xee);
          const read = await reader.read(60 * KiB, 12 * KiB, buffer);
          expect(read.buffer).toBe(buffer.buffer);
          expect(read.byteOffset).toBe(0);
          expect(read.length).toBe(12 * KiB);
          expectZeroes(read.subarray(0, 4 * KiB));
          expectSameBytes(read.subarray(4 * KiB, 8 * KiB), pattern(4 * KiB, 3));
          expectZeroes(read.subarray(8 * KiB));
          await expect(reader.read(0, 256 * KiB, buffer)).rejects.toThrow(RangeError);
        } finally {
          await reader.close();
        }
      });

      it("may be empty", async () => {
        await driver.create("empty", 0);
        const reader = await driver.openRead("empty");
        try {
          expect(reader.sizeBytes).toBe(0);
          expect(await reader.extents()).toEqual([]);
          expect((await reader.read(0, 0)).length).toBe(0);
        } finally {
          await reader.close();
        }
      });

      it("are listed by vid, sorted, nested vids included", async () => {
        for (const vid of ["vm-templates/fedora/root", "appvms/work/root", "b", "appvms/work/private", "a"]) await driver.create(vid, MiB);
        expect(await driver.list()).toEqual(["a", "appvms/work/private", "appvms/work/root", "b", "vm-templates/fedora/root"]);
      });

      it("are not made again over an existing vid, which keeps its content and size", async () => {
        await driver.create("v", SIZE);
        await writeContent(driver, "v", [[0, pattern(4 * KiB, 1)]]);
        await expectError(driver.create("v", 2 * SIZE), "already-exists", volumeExists("v"));
        expect((await driver.volumeUsage("v")).sizeBytes).toBe(SIZE);
        expectSameBytes(await readBytes(driver, "v", 0, 4 * KiB), pattern(4 * KiB, 1));
      });

      it("refuse a vid that could lead out of the pool, or is not a path of plain names", async () => {
        for (const vid of ["", "/etc/passwd", "../up", "a/../../b", "a/./b", "..", "a//b", "a/", "a b", "a\0b", "a\\b"]) {
          await expectError(driver.create(vid, MiB), "invalid-argument", invalidVid(vid));
        }
        expect(await driver.list()).toEqual([]);
      });

      it("refuse a size that is not a byte count", async () => {
        for (const size of [-512, 1.5, Number.NaN, 2 ** 53]) await expectError(driver.create("v", size), "invalid-argument", invalidVolumeSize("v", size));
        expect(await driver.list()).toEqual([]);
      });

      it("are gone once deleted, with their revisions: every operation is NOT_FOUND, and a second delete says there was none", async () => {
        await driver.create("v", SIZE);
        await writeContent(driver, "v", [[0, pattern(4 * KiB, 1)]]);
        const revision = await driver.snapshot("v");
        expect(await driver.delete("v")).toBe(true);

        expect(await driver.list()).toEqual([]);
        const operations: [string, () => Promise<unknown>][] = [
          ["resize", () => driver.resize("v", 2 * SIZE)],
          ["snapshot", () => driver.snapshot("v")],
          ["revert", () => driver.revert("v", revision.id)],
          ["revisions", () => driver.revisions("v")],
          ["deleteRevision", () => driver.deleteRevision("v", revision.id)],
          ["openRead", () => driver.openRead("v")],
          ["openRead of a revision", () => driver.openRead("v", revision.id)],
          ["openWrite", () => driver.openWrite("v")],
          ["volumeUsage", () => driver.volumeUsage("v")],
        ];
        for (const [operation, call] of operations) {
          const error = await failure(call(), operation);
          expect({ operation, error }).toMatchObject({ operation, error: { kind: "not-found", reason: NOT_FOUND.reason, metadata: { vid: "v" } } });
        }
        expect(await driver.delete("v")).toBe(false);
      });

      it("made again after a delete start empty, without revisions", async () => {
        await driver.create("v", SIZE);
        await writeContent(driver, "v", [[0, pattern(4 * KiB, 1)]]);
        await driver.snapshot("v");
        await driver.delete("v");

        await driver.create("v", MiB);
        expect(await driver.revisions("v")).toEqual([]);
        expectZeroes(await readBytes(driver, "v", 0, 4 * KiB));
        expect((await driver.volumeUsage("v")).sizeBytes).toBe(MiB);
      });

      it("that never existed are not deleted", async () => {
        expect(await driver.delete("never")).toBe(false);
      });
    });

    describe("writing", () => {
      beforeEach(() => driver.create("v", SIZE));

      it("makes what was written read back once the writer finished, zeroes elsewhere", async () => {
        // One write across a 64 KiB boundary, one small and unaligned far from it.
        await writeContent(driver, "v", [
          [60 * KiB, pattern(100 * KiB, 1)],
          [5 * MiB + 123, pattern(1000, 2)],
        ]);
        expectSameBytes(await readBytes(driver, "v", 60 * KiB, 100 * KiB), pattern(100 * KiB, 1));
        expectSameBytes(await readBytes(driver, "v", 5 * MiB + 123, 1000), pattern(1000, 2));
        expectZeroes(await readBytes(driver, "v", 0, 60 * KiB));
        expectZeroes(await readBytes(driver, "v", 160 * KiB, 64 * KiB));
        expectZeroes(await readBytes(driver, "v", 5 * MiB, 123));
        expectZeroes(await readBytes(driver, "v", 5 * MiB + 1123, 4 * KiB));
      });

      it("changes nothing until finish()", async () => {
        const writer = await driver.openWrite("v");
        await writer.write(0, pattern(64 * KiB, 1));
        expectZeroes(await readBytes(driver, "v", 0, 64 * KiB));
        expect(await extentsOf(driver, "v")).toEqual([{ offset: 0, length: SIZE, allocated: false }]);
        await writer.finish();
        expectSameBytes(await readBytes(driver, "v", 0, 64 * KiB), pattern(64 * KiB, 1));
      });

      it("is dropped by abort(), leaving the volume as it was", async () => {
        await writeContent(driver, "v", [[0, pattern(64 * KiB, 1)]]);
        const extentsBefore = await extentsOf(driver, "v");
        const usageBefore = await driver.volumeUsage("v");

        const writer = await driver.openWrite("v", 2 * SIZE);
        await writer.write(0, pattern(64 * KiB, 2));
        await writer.write(SIZE + MiB, pattern(64 * KiB, 3));
        await writer.abort();
        await writer.abort();

        expectSameBytes(await readBytes(driver, "v", 0, 64 * KiB), pattern(64 * KiB, 1));
        expect(await extentsOf(driver, "v")).toEqual(extentsBefore);
        expect(await driver.volumeUsage("v")).toEqual(usageBefore);
      });

      it("replaces the whole content: what the writer did not write reads as zeroes", async () => {
        await writeContent(driver, "v", [[0, pattern(64 * KiB, 1)]]);
        await writeContent(driver, "v", [[MiB, pattern(64 * KiB, 2)]]);
        expectZeroes(await readBytes(driver, "v", 0, 64 * KiB));
        expectSameBytes(await readBytes(driver, "v", MiB, 64 * KiB), pattern(64 * KiB, 2));
      });

      it("sets the size a writer was opened with, larger or smaller, once it finishes", async () => {
        const larger = await driver.openWrite("v", 2 * SIZE);
        await larger.write(SIZE + 512, pattern(4 * KiB, 1));
        expect((await driver.volumeUsage("v")).sizeBytes).toBe(SIZE);
        await larger.finish();
        expect((await driver.volumeUsage("v")).sizeBytes).toBe(2 * SIZE);
        expectSameBytes(await readBytes(driver, "v", SIZE + 512, 4 * KiB), pattern(4 * KiB, 1));

        await writeContent(driver, "v", [[0, pattern(4 * KiB, 2)]], MiB);
        expect((await driver.volumeUsage("v")).sizeBytes).toBe(MiB);
        expectSameBytes(await readBytes(driver, "v", 0, 4 * KiB), pattern(4 * KiB, 2));
      });

      it("ends with finish(): aborting afterwards changes nothing, and writing is refused", async () => {
        const writer = await driver.openWrite("v");
        await writer.write(0, pattern(4 * KiB, 1));
        await writer.finish();
        await writer.abort();
        await failure(writer.write(0, pattern(4 * KiB, 2)), "a write after finish()");
        expectSameBytes(await readBytes(driver, "v", 0, 4 * KiB), pattern(4 * KiB, 1));
      });

      it("finds the volume gone at finish() when it was deleted meanwhile, and does not bring it back", async () => {
        const writer = await driver.openWrite("v");
        await writer.write(0, pattern(4 * KiB, 1));
        await driver.delete("v");
        await expectError(writer.finish(), "not-found", NOT_FOUND);
        expect(await driver.list()).toEqual([]);
      });

      it("refuses writes past the end, and the writer can still finish what it had", async () => {
        const writer = await driver.openWrite("v");
        try {
          await writer.write(0, pattern(4 * KiB, 1));
          await expectError(writer.write(SIZE - 1, pattern(2, 2)), "out-of-range", outOfRange("v", SIZE - 1, 2, SIZE));
          await expectError(writer.write(SIZE + 512, pattern(512, 2)), "out-of-range", outOfRange("v", SIZE + 512, 512, SIZE));
          await expectError(writer.write(-512, pattern(512, 2)), "out-of-range", outOfRange("v", -512, 512, SIZE));
          await writer.write(SIZE - 512, pattern(512, 3));
          await writer.finish();
        } finally {
          await writer.abort();
        }
        expectSameBytes(await readBytes(driver, "v", 0, 4 * KiB), pattern(4 * KiB, 1));
        expectSameBytes(await readBytes(driver, "v", SIZE - 512, 512), pattern(512, 3));
      });
    });

    describe("reading", () => {
      beforeEach(() => driver.create("v", SIZE));

      it("lists extents that cover the whole size, with what was written allocated and holes elsewhere", async () => {
        const writes: [number, Uint8Array][] = [
          [4 * MiB, pattern(4 * KiB, 1)],
          [12 * MiB - 10, pattern(20, 2)],
        ];
        await writeContent(driver, "v", writes);
        const extents = await extentsOf(driver, "v");

        expectTiling(extents, SIZE);
        for (const [offset, bytes] of writes) {
          for (const written of [offset, offset + bytes.length - 1]) expect({ written, extent: extentAt(extents, written) }).toMatchObject({ extent: { allocated: true } });
        }
        for (const hole of [0, 8 * MiB, SIZE - 1]) expect({ hole, extent: extentAt(extents, hole) }).toMatchObject({ extent: { allocated: false } });
        const allocated = extents.filter((extent) => extent.allocated).reduce((sum, extent) => sum + extent.length, 0);
        expect(allocated).toBeLessThan(MiB);
        const firstHole = extents.find((extent) => !extent.allocated)!;
        expectZeroes(await readBytes(driver, "v", firstHole.offset, Math.min(firstHole.length, 64 * KiB)));
      });

      it("refuses reads past the end, and reads nothing at the end", async () => {
        const reader = await driver.openRead("v");
        try {
          await expectError(reader.read(SIZE - 10, 20), "out-of-range", outOfRange("v", SIZE - 10, 20, SIZE));
          await expectError(reader.read(SIZE + 512, 0), "out-of-range", outOfRange("v", SIZE + 512, 0, SIZE));
          await expectError(reader.read(-512, 512), "out-of-range", outOfRange("v", -512, 512, SIZE));
          expect((await reader.read(SIZE, 0)).length).toBe(0);
          expect((await reader.read(SIZE - 512, 512)).length).toBe(512);
        } finally {
          await reader.close();
        }
      });

      it("gives buffers of the caller's own: changing one changes nothing stored", async () => {
        await writeContent(driver, "v", [[0, pattern(4 * KiB, 1)]]);
        const bytes = await readBytes(driver, "v", 0, 4 * KiB);
        bytes.fill(0);
        expectSameBytes(await readBytes(driver, "v", 0, 4 * KiB), pattern(4 * KiB, 1));
      });

      it("takes no alias of a writer's buffer: the caller may reuse it once write() resolved", async () => {
        const buffer = pattern(4 * KiB, 1);
        const writer = await driver.openWrite("v");
        await writer.write(0, buffer);
        buffer.fill(7);
        await writer.finish();
        expectSameBytes(await readBytes(driver, "v", 0, 4 * KiB), pattern(4 * KiB, 1));
      });
    });

    describe("resize", () => {
      /** Not a multiple of 64 KiB, so that the block holding the end is partly past it. */
      const ODD_SIZE = MiB + 3 * 512;

      it("grows the volume, keeping its content, with zeroes after the old end", async () => {
        await driver.create("v", ODD_SIZE);
        await writeContent(driver, "v", [[ODD_SIZE - 512, pattern(512, 1)]]);
        await driver.resize("v", 4 * MiB);

        expect((await driver.volumeUsage("v")).sizeBytes).toBe(4 * MiB);
        expectSameBytes(await readBytes(driver, "v", ODD_SIZE - 512, 512), pattern(512, 1));
        expectZeroes(await readBytes(driver, "v", ODD_SIZE, 4 * MiB - ODD_SIZE));
        const reader = await driver.openRead("v");
        try {
          expect(reader.sizeBytes).toBe(4 * MiB);
          expectTiling(await reader.extents(), 4 * MiB);
        } finally {
          await reader.close();
        }
      });

      it("to the same size does nothing; smaller is refused and keeps the volume", async () => {
        await driver.create("v", SIZE);
        await writeContent(driver, "v", [[SIZE - 4 * KiB, pattern(4 * KiB, 1)]]);
        await driver.resize("v", SIZE);
        await expectError(driver.resize("v", SIZE - MiB), "failed-precondition", shrinkRefused("v", SIZE, SIZE - MiB));
        await expectError(driver.resize("v", -512), "invalid-argument", invalidVolumeSize("v", -512));
        expect((await driver.volumeUsage("v")).sizeBytes).toBe(SIZE);
        expectSameBytes(await readBytes(driver, "v", SIZE - 4 * KiB, 4 * KiB), pattern(4 * KiB, 1));
      });
    });

    describe("revisions", () => {
      beforeEach(() => driver.create("v", SIZE));

      it("are saved by snapshot and brought back by revert: what was written since is gone", async () => {
        await writeContent(driver, "v", [[0, pattern(64 * KiB, 1)]]);
        const revision = await driver.snapshot("v");
        expect(revision).toEqual({ id: expect.any(String), createdAt: expect.any(Date), sizeBytes: SIZE });
        expect(revision.id).not.toBe("");

        await writeContent(driver, "v", [[0, pattern(64 * KiB, 2)], [MiB, pattern(64 * KiB, 3)]]);
        await driver.revert("v", revision.id);
        expectSameBytes(await readBytes(driver, "v", 0, 64 * KiB), pattern(64 * KiB, 1));
        expectZeroes(await readBytes(driver, "v", MiB, 64 * KiB));
      });

      it("are listed oldest first, with distinct ids, and stay when reverted to", async () => {
        const saved = await saveRevisions(driver, "v", [1, 2, 3]);
        const listed = await driver.revisions("v");
        expect(listed.map((revision) => revision.id)).toEqual(saved.map((revision) => revision.id));
        expect(new Set(listed.map((revision) => revision.id)).size).toBe(3);
        const times = listed.map((revision) => revision.createdAt.getTime());
        expect([...times].sort((a, b) => a - b)).toEqual(times);

        const [, second] = saved;
        await driver.revert("v", second.id);
        expectSameBytes(await readBytes(driver, "v", 0, 4 * KiB), pattern(4 * KiB, 2));
        await writeContent(driver, "v", [[0, pattern(4 * KiB, 4)]]);
        await driver.revert("v", second.id);
        expectSameBytes(await readBytes(driver, "v", 0, 4 * KiB), pattern(4 * KiB, 2));
        expect((await driver.revisions("v")).map((revision) => revision.id)).toEqual(saved.map((revision) => revision.id));
      });

      it("keep the size they were saved at, which a revert brings back", async () => {
        const revision = await driver.snapshot("v");
        await driver.resize("v", 2 * SIZE);
        await driver.revert("v", revision.id);
        expect((await driver.volumeUsage("v")).sizeBytes).toBe(SIZE);
        expect((await driver.revisions("v"))[0]).toMatchObject({ id: revision.id, sizeBytes: SIZE });
      });

      it("can be read while the volume has moved on", async () => {
        await writeContent(driver, "v", [[0, pattern(4 * KiB, 1)]]);
        const revision = await driver.snapshot("v");
        await writeContent(driver, "v", [[0, pattern(4 * KiB, 2)]], 2 * SIZE);

        const reader = await driver.openRead("v", revision.id);
        try {
          expect(reader.sizeBytes).toBe(SIZE);
          expectSameBytes(await reader.read(0, 4 * KiB), pattern(4 * KiB, 1));
          expectTiling(await reader.extents(), SIZE);
        } finally {
          await reader.close();
        }
        expectSameBytes(await readBytes(driver, "v", 0, 4 * KiB), pattern(4 * KiB, 2));
      });

      it("that the volume does not have are NOT_FOUND, and the volume stays as it is", async () => {
        await driver.create("other", SIZE);
        const othersRevision = await driver.snapshot("other");
        await writeContent(driver, "v", [[0, pattern(4 * KiB, 1)]]);

        for (const revision of ["not-a-revision", othersRevision.id]) {
          await expectError(driver.revert("v", revision), "not-found", revisionNotFound("v", revision));
          await expectError(driver.openRead("v", revision), "not-found", revisionNotFound("v", revision));
          expect(await driver.deleteRevision("v", revision)).toBe(false);
        }
        expectSameBytes(await readBytes(driver, "v", 0, 4 * KiB), pattern(4 * KiB, 1));
        expect(await driver.revisions("other")).toEqual([othersRevision]);
      });

      it("are deleted one by one, leaving the others and the volume's content", async () => {
        const [first, second, third] = await saveRevisions(driver, "v", [1, 2, 3]);
        expect(await driver.deleteRevision("v", first.id)).toBe(true);
        expect(await driver.deleteRevision("v", first.id)).toBe(false);

        expect((await driver.revisions("v")).map((revision) => revision.id)).toEqual([second.id, third.id]);
        await expectError(driver.revert("v", first.id), "not-found", revisionNotFound("v", first.id));
        expectSameBytes(await readBytes(driver, "v", 0, 4 * KiB), pattern(4 * KiB, 3));
        await driver.revert("v", second.id);
        expectSameBytes(await readBytes(driver, "v", 0, 4 * KiB), pattern(4 * KiB, 2));
      });
    });

    describe("usage", () => {
      beforeEach(() => driver.create("v", SIZE));

      it("of a volume is its size, and bytes allocated that grow with writes and stay below the size while it is sparse", async () => {
        const before = await driver.volumeUsage("v");
        expect(before.sizeBytes).toBe(SIZE);
        await writeContent(driver, "v", [[0, pattern(MiB, 1)]]);
        const after = await driver.volumeUsage("v");
        expect(after.sizeBytes).toBe(SIZE);
        expect(after.allocatedBytes).toBeGreaterThan(before.allocatedBytes);
        expect(after.allocatedBytes).toBeLessThan(SIZE);
      });

      it("stamps a volume's content: the same while nothing changes it, another after a write, a revert or a resize", async () => {
        const stamp = async () => (await driver.volumeUsage("v")).stamp;
        const first = await stamp();
        expect(await stamp()).toBe(first);
        await driver.revisions("v");
        expect(await stamp()).toBe(first);
        // Past a coarse clock's tick, so that a stamp by modification time can tell the change.
        await new Promise((resolve) => setTimeout(resolve, 20));
        await writeContent(driver, "v", [[0, pattern(MiB, 1)]]);
        const written = await stamp();
        expect(written).not.toBe(first);
        const revision = await driver.snapshot("v");
        await writeContent(driver, "v", [[0, pattern(MiB, 2)]]);
        const rewritten = await stamp();
        await driver.revert("v", revision.id);
        expect(await stamp()).not.toBe(rewritten);
        const reverted = await stamp();
        await driver.resize("v", 2 * SIZE);
        expect(await stamp()).not.toBe(reverted);
      });

      it("of the pool grows with writes, shrinks with deletes, and stays within its capacity", async () => {
        const before = await driver.poolUsage();
        await writeContent(driver, "v", [[0, pattern(MiB, 1)]]);
        const written = await driver.poolUsage();
        expect(written.usedBytes).toBeGreaterThan(before.usedBytes);
        if (written.capacityBytes !== undefined) expect(written.capacityBytes).toBeGreaterThanOrEqual(written.usedBytes);

        await driver.delete("v");
        expect((await driver.poolUsage()).usedBytes).toBeLessThan(written.usedBytes);
      });
    });

    describe("cheap clone", () => {
      it(`is ${capabilities.cheapClone ? "" : "not "}offered, as the driver's test says`, () => {
        expect(canCloneCheaply(driver)).toBe(capabilities.cheapClone);
      });

      if (!capabilities.cheapClone) return;
      const clone = (source: string, target: string) => {
        if (!canCloneCheaply(driver)) throw new Error(`the ${name} driver does not clone cheaply`);
        return driver.clone(source, target);
      };

      beforeEach(async () => {
        await driver.create("source", SIZE);
        await writeContent(driver, "source", [[0, pattern(MiB, 1)]]);
        await driver.snapshot("source");
      });

      it("makes a volume that reads the same, of the same size, without the source's revisions", async () => {
        await clone("source", "copy");
        expect(await driver.list()).toEqual(["copy", "source"]);
        expect((await driver.volumeUsage("copy")).sizeBytes).toBe(SIZE);
        expectSameBytes(await readBytes(driver, "copy", 0, MiB), pattern(MiB, 1));
        expect(await extentsOf(driver, "copy")).toEqual(await extentsOf(driver, "source"));
        expect(await driver.revisions("copy")).toEqual([]);
      });

      it("makes copies that do not change when the other is written", async () => {
        await clone("source", "copy");
        await writeContent(driver, "copy", [[0, pattern(4 * KiB, 2)]]);
        expectSameBytes(await readBytes(driver, "source", 0, MiB), pattern(MiB, 1));
        await writeContent(driver, "source", [[0, pattern(4 * KiB, 3)]]);
        expectSameBytes(await readBytes(driver, "copy", 0, 4 * KiB), pattern(4 * KiB, 2));
      });

      it("costs next to no space in the pool", async () => {
        const before = await driver.poolUsage();
        await clone("source", "copy");
        expect((await driver.poolUsage()).usedBytes - before.usedBytes).toBeLessThan(MiB);
      });

      it("replaces an existing target's content and size, keeping its revisions", async () => {
        await driver.create("target", 2 * SIZE);
        await writeContent(driver, "target", [[0, pattern(4 * KiB, 2)]]);
        const revision = await driver.snapshot("target");

        await clone("source", "target");
        expect((await driver.volumeUsage("target")).sizeBytes).toBe(SIZE);
        expectSameBytes(await readBytes(driver, "target", 0, MiB), pattern(MiB, 1));
        expect(await driver.revisions("target")).toEqual([revision]);
        await driver.revert("target", revision.id);
        expectSameBytes(await readBytes(driver, "target", 0, 4 * KiB), pattern(4 * KiB, 2));
      });

      it("of a missing source is NOT_FOUND, and makes nothing", async () => {
        await expectError(clone("missing", "copy"), "not-found", volumeNotFound("missing"));
        expect(await driver.list()).toEqual(["source"]);
      });
    });
  });
}

/** Non-zero bytes that differ with `seed`, so that one content is never taken for another. */
function pattern(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = ((i + seed * 37) % 251) + 1;
  return bytes;
}

/** For each seed, writes its pattern and saves a revision. */
async function saveRevisions(driver: StorageDriver, vid: string, seeds: readonly number[]): Promise<Revision[]> {
  const revisions: Revision[] = [];
  for (const seed of seeds) {
    await writeContent(driver, vid, [[0, pattern(4 * KiB, seed)]]);
    revisions.push(await driver.snapshot(vid));
  }
  return revisions;
}

/** Opens a writer, writes, and finishes; aborts when something fails. */
async function writeContent(driver: StorageDriver, vid: string, writes: readonly (readonly [number, Uint8Array])[], sizeBytes?: number): Promise<void> {
  const writer = await driver.openWrite(vid, sizeBytes);
  try {
    for (const [offset, bytes] of writes) await writer.write(offset, bytes);
    await writer.finish();
  } finally {
    await writer.abort();
  }
}

async function readBytes(driver: StorageDriver, vid: string, offset: number, length: number): Promise<Uint8Array> {
  const reader = await driver.openRead(vid);
  try {
    return await reader.read(offset, length);
  } finally {
    await reader.close();
  }
}

async function extentsOf(driver: StorageDriver, vid: string): Promise<Extent[]> {
  const reader = await driver.openRead(vid);
  try {
    return await reader.extents();
  } finally {
    await reader.close();
  }
}

/** Extents in order, none empty, each starting where the last ended, neighbours of different kinds, from 0 to `size`. */
function expectTiling(extents: readonly Extent[], size: number): void {
  let end = 0;
  extents.forEach((extent, index) => {
    expect({ index, extent }).toMatchObject({ extent: { offset: end } });
    expect(extent.length).toBeGreaterThan(0);
    if (index > 0) expect({ index, allocated: extent.allocated }).toEqual({ index, allocated: !extents[index - 1].allocated });
    end = extent.offset + extent.length;
  });
  expect(end).toBe(size);
}

function extentAt(extents: readonly Extent[], offset: number): Extent | undefined {
  return extents.find((extent) => extent.offset <= offset && offset < extent.offset + extent.length);
}

/** Compares without jest walking a megabyte element by element, and says where they first differ. */
function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.length).toBe(expected.length);
  const differs = actual.findIndex((byte, index) => byte !== expected[index]);
  expect({ firstDifferenceAt: differs }).toEqual({ firstDifferenceAt: -1 });
}

function expectZeroes(bytes: Uint8Array): void {
  expect({ firstNonZeroAt: bytes.findIndex((byte) => byte !== 0) }).toEqual({ firstNonZeroAt: -1 });
}

/** The error `promise` rejects with; fails the test when it resolves. */
async function failure(promise: Promise<unknown>, what = "the call"): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error(`${what} succeeded, but it should have failed`);
}

/** Expects a DomainError of `kind` with the reason of `like`, a factory's error, and the same metadata. */
async function expectError(promise: Promise<unknown>, kind: ErrorKind, like: DomainError): Promise<void> {
  const error = await failure(promise);
  expect(error).toBeInstanceOf(DomainError);
  expect(error).toMatchObject({ kind, reason: like.reason, metadata: like.metadata });
}
