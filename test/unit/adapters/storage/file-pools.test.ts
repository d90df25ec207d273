import * as fs from "node:fs";
import * as path from "node:path";
import { FileStorageDriver } from "../../../../src/adapters/storage/file/file-storage-driver";
import { FileReflinkStorageDriver } from "../../../../src/adapters/storage/file-reflink/file-reflink-storage-driver";
import { DomainError } from "../../../../src/core/errors";
import { poolLocationUnusable, unsafeVolumePath } from "../../../../src/ports/storage-errors";
import { makeTempDir, removeDir } from "../../../fixtures/temp-dir";

const UNSAFE = unsafeVolumePath("v", "").reason;
const UNUSABLE = poolLocationUnusable("/x", "").reason;

async function failure(promise: Promise<unknown>): Promise<DomainError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof DomainError) return error;
    throw error;
  }
  throw new Error("the call succeeded, but it should have failed");
}

describe("pools of files", () => {
  let dir: string;
  let root: string;
  let outside: string;

  beforeEach(() => {
    dir = makeTempDir("steward-file-pools-");
    root = path.join(dir, "pool");
    outside = path.join(dir, "outside");
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, "secret.img"), "not the pool's");
  });

  afterEach(() => removeDir(dir));

  it("are made where the folder is missing, and refused where a file is in the way", async () => {
    await FileStorageDriver.open(path.join(root, "deep", "er"));
    expect(fs.statSync(path.join(root, "deep", "er")).isDirectory()).toBe(true);
    fs.writeFileSync(path.join(dir, "plain"), "");
    expect(await failure(FileStorageDriver.open(path.join(dir, "plain")))).toMatchObject({ kind: "failed-precondition", reason: UNUSABLE });
  });

  it("refuse file-reflink on a filesystem without reflinks, saying so", async () => {
    // The temp folder is on the machine's own filesystem (ext4 here), which cannot reflink.
    const error = await failure(FileReflinkStorageDriver.open(root));
    expect(error).toMatchObject({ kind: "failed-precondition", reason: UNUSABLE });
    expect(error.message).toMatch(/cannot make reflinks/);
  });

  it("never follow a symlink planted in the pool's folder, neither for a folder nor for a volume", async () => {
    const driver = await FileStorageDriver.open(root);
    fs.symlinkSync(outside, path.join(root, "appvms"));
    fs.symlinkSync(path.join(outside, "secret.img"), path.join(root, "planted.img"));

    for (const call of [driver.create("appvms/work/private", 1024 * 1024), driver.openRead("planted"), driver.create("planted", 512), driver.delete("planted")]) {
      expect(await failure(call)).toMatchObject({ kind: "invalid-argument", reason: UNSAFE });
    }
    expect(fs.readdirSync(outside)).toEqual(["secret.img"]);
    expect(fs.readFileSync(path.join(outside, "secret.img"), "utf8")).toBe("not the pool's");
    expect(await driver.list()).toEqual([]);
  });

  it("refuse to make a volume's own folder where a symlink was planted, dangling or to a file", async () => {
    const driver = await FileStorageDriver.open(root);
    fs.mkdirSync(path.join(root, "vms"));
    fs.symlinkSync(path.join(outside, "gone"), path.join(root, "vms", "dangling"));
    fs.symlinkSync(path.join(outside, "secret.img"), path.join(root, "vms", "to-file"));
    for (const vid of ["vms/dangling/private", "vms/to-file/private"]) {
      expect(await failure(driver.create(vid, 512))).toMatchObject({ kind: "invalid-argument", reason: UNSAFE });
    }
    expect(fs.readdirSync(outside)).toEqual(["secret.img"]);
  });

  it("refuse a folder swapped for a symlink after its volumes were made, however deep", async () => {
    const driver = await FileStorageDriver.open(root);
    await driver.create("vms/one/private", 1024 * 1024);
    fs.mkdirSync(path.join(outside, "one"));
    fs.writeFileSync(path.join(outside, "one", "private.img"), "not the pool's");
    fs.rmSync(path.join(root, "vms", "one"), { recursive: true });
    fs.symlinkSync(path.join(outside, "one"), path.join(root, "vms", "one"));

    for (const call of [() => driver.openRead("vms/one/private"), () => driver.delete("vms/one/private"), () => driver.create("vms/one/volatile", 512)]) {
      expect(await failure(call())).toMatchObject({ kind: "invalid-argument", reason: UNSAFE });
    }
    expect(fs.readdirSync(path.join(outside, "one"))).toEqual(["private.img"]);
  });

  it("sweep at their start what an interrupted write left", async () => {
    const driver = await FileStorageDriver.open(root);
    await driver.create("v", 1024 * 1024);
    const writer = await driver.openWrite("v");
    await writer.write(0, new Uint8Array(4096).fill(1));
    // The process dies here: the writer never finishes.
    expect(fs.readdirSync(path.join(root, "tmp~"))).toHaveLength(1);

    const again = await FileStorageDriver.open(root);
    expect(fs.readdirSync(path.join(root, "tmp~"))).toEqual([]);
    expect(await again.list()).toEqual(["v"]);
    await writer.abort();
  });

  it("finish a delete a crash cut short after the volume's file went: its revisions go too", async () => {
    const driver = await FileStorageDriver.open(root);
    await driver.create("vms/a/private", 1024 * 1024);
    const revision = await driver.snapshot("vms/a/private");
    // What deleteWith leaves when the process dies after moving the file away.
    fs.rmSync(path.join(root, "vms", "a", "private.img"));
    expect(fs.readdirSync(path.join(root, "vms", "a"))).toEqual([`private.img.${revision.id}~`]);
    expect(await driver.delete("vms/a/private")).toBe(false);
    expect(fs.readdirSync(path.join(root, "vms", "a"))).toEqual([]);
    // A vid never made, in a folder never made, is nothing to delete.
    expect(await driver.delete("vms/b/private")).toBe(false);
  });

  it("take a guest's own LUKS disk for bytes like any other: only a volume the pool made ephemeral loses its header's size", async () => {
    const driver = await FileStorageDriver.open(root);
    await driver.create("disk", 4 * 1024 * 1024);
    const writer = await driver.openWrite("disk");
    // LUKS1's magic and version, and a payload offset that would be 8 GiB.
    const header = Buffer.alloc(4096);
    Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe, 0, 1]).copy(header);
    header.writeUInt32BE(16 * 1024 * 1024, 104);
    await writer.write(0, header);
    await writer.finish();
    expect((await driver.volumeUsage("disk")).sizeBytes).toBe(4 * 1024 * 1024);

    await driver.create("volatile", 64 * 1024 * 1024);
    await driver.makeEphemeral("volatile");
    expect(fs.statSync(path.join(root, "volatile.img")).size).toBeGreaterThan(64 * 1024 * 1024);
    expect((await driver.volumeUsage("volatile")).sizeBytes).toBe(64 * 1024 * 1024);
    const emptied = await driver.openWrite("volatile");
    await emptied.finish();
    expect(fs.existsSync(path.join(root, "volatile.img.luks~"))).toBe(false);
    expect(fs.statSync(path.join(root, "volatile.img")).size).toBe(64 * 1024 * 1024);
  });
});
