import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { Qcow2StorageDriver } from "../../../../src/adapters/storage/qcow2/qcow2-storage-driver";
import type { StorageDriver } from "../../../../src/ports/storage-driver";
import { unsafeVolumePath } from "../../../../src/ports/storage-errors";
import { makeTempDir, removeDir } from "../../../fixtures/temp-dir";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

async function write(driver: StorageDriver, vid: string, offset: number, byte: number): Promise<void> {
  const writer = await driver.openWrite(vid);
  await writer.write(offset, new Uint8Array(64 * 1024).fill(byte));
  await writer.finish();
}

async function byteAt(driver: StorageDriver, vid: string, offset: number, revision?: string): Promise<number> {
  const reader = await driver.openRead(vid, revision);
  try {
    return (await reader.read(offset, 1))[0];
  } finally {
    await reader.close();
  }
}

function backingOf(file: string): string | undefined {
  const info = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", "-U", file], { encoding: "utf8" })) as { "backing-filename"?: string };
  return info["backing-filename"];
}

describe("qcow2 pools", () => {
  let dir: string;
  let root: string;

  beforeEach(() => {
    dir = makeTempDir("steward-qcow2-");
    root = path.join(dir, "pool");
  });

  afterEach(() => removeDir(dir));

  it("snapshot and clone a 10 GiB volume as overlays: the pool grows by headers, not by the volume", async () => {
    const driver = await Qcow2StorageDriver.open(root);
    await driver.create("tpl/root", 10 * GiB);
    await write(driver, "tpl/root", 0, 7);
    const before = (await driver.poolUsage()).usedBytes;
    const revision = await driver.snapshot("tpl/root");
    await driver.clone("tpl/root", "app/root");
    expect((await driver.poolUsage()).usedBytes - before).toBeLessThan(2 * MiB);
    expect(backingOf(path.join(root, "tpl", "root.qcow2"))).toMatch(/^root\.qcow2\.base-.*~$/);
    expect(backingOf(path.join(root, "app", "root.qcow2"))).toMatch(/^\.\.\/tpl\/root\.qcow2\.base-.*~$/);
    expect(await byteAt(driver, "app/root", 0)).toBe(7);

    // A second clone of an unchanged source shares the same base.
    await driver.clone("tpl/root", "other/root");
    expect(path.basename(backingOf(path.join(root, "other", "root.qcow2"))!)).toBe(path.basename(backingOf(path.join(root, "app", "root.qcow2"))!));
    expect(await driver.revisions("tpl/root")).toEqual([revision]);
  });

  it("keep a clone's content when the revision under it is dropped and its source is deleted", async () => {
    const driver = await Qcow2StorageDriver.open(root);
    await driver.create("src", 8 * MiB);
    await write(driver, "src", 0, 1);
    const revision = await driver.snapshot("src");
    await write(driver, "src", MiB, 2);
    await driver.clone("src", "copy");
    await driver.revert("src", revision.id);
    expect(await driver.deleteRevision("src", revision.id)).toBe(true);
    expect(await driver.delete("src")).toBe(true);
    expect(await byteAt(driver, "copy", 0)).toBe(0); // the writer replaced the whole content: only what it wrote stays
    expect(await byteAt(driver, "copy", MiB)).toBe(2);
    // Of src, only the base the copy is backed by is left: no revision, no image nobody uses.
    expect(fs.readdirSync(root).sort()).toEqual(["copy.qcow2", expect.stringMatching(/^src\.qcow2\.base-.*~$/), "tmp~"]);
  });

  it("refuse an image someone planted whose backing file lies outside the pool", async () => {
    const driver = await Qcow2StorageDriver.open(root);
    const outside = path.join(dir, "secret.raw");
    fs.writeFileSync(outside, Buffer.alloc(MiB, 9));
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", outside, "-F", "raw", path.join(root, "planted.qcow2")]);
    expect(await driver.list()).toEqual(["planted"]);
    for (const call of [driver.openRead("planted"), driver.snapshot("planted"), driver.clone("planted", "copy")]) {
      await expect(call).rejects.toMatchObject({ kind: "invalid-argument", reason: unsafeVolumePath("planted", "").reason });
    }
    expect(fs.readFileSync(outside)[0]).toBe(9);
  });

  it("sweep at their start a snapshot that a crash cut short, leaving the volume as it was", async () => {
    const driver = await Qcow2StorageDriver.open(root);
    await driver.create("v", 8 * MiB);
    await write(driver, "v", 0, 3);
    // A snapshot killed after its link: the revision's name shares the volume's file.
    fs.linkSync(path.join(root, "v.qcow2"), path.join(root, "v.qcow2.123~"));

    const again = await Qcow2StorageDriver.open(root);
    expect(await again.revisions("v")).toEqual([]);
    expect(await byteAt(again, "v", 0)).toBe(3);
    expect(fs.readdirSync(root).sort()).toEqual(["tmp~", "v.qcow2"]);
  });

  it("make one change of their images at a time: clones of one source at once all read its content", async () => {
    const driver = await Qcow2StorageDriver.open(root);
    await driver.create("tpl", 8 * MiB);
    await write(driver, "tpl", 0, 5);
    await Promise.all([...Array.from({ length: 6 }, (_, i) => driver.clone("tpl", `app${i}`)), driver.snapshot("tpl"), write(driver, "tpl", MiB, 6)]);
    for (let i = 0; i < 6; i++) expect(await byteAt(driver, `app${i}`, 0)).toBe(5);
    expect(await byteAt(driver, "tpl", 0)).toBe(0); // the write replaced the whole content
    expect(await byteAt(driver, "tpl", MiB)).toBe(6);
    const again = await Qcow2StorageDriver.open(root);
    for (let i = 0; i < 6; i++) expect(await byteAt(again, `app${i}`, 0)).toBe(5);
  });

  it("leave alone at their start images with several links that are not a cut-short freeze (a hard-link backup)", async () => {
    const driver = await Qcow2StorageDriver.open(root);
    await driver.create("v", 8 * MiB);
    await write(driver, "v", 0, 8);
    const revision = await driver.snapshot("v");
    const backup = path.join(dir, "backup");
    fs.mkdirSync(backup);
    for (const name of fs.readdirSync(root).filter((entry) => entry.startsWith("v."))) fs.linkSync(path.join(root, name), path.join(backup, name));

    const again = await Qcow2StorageDriver.open(root);
    expect(await again.revisions("v")).toEqual([revision]);
    expect(await byteAt(again, "v", 0, revision.id)).toBe(8);
  });
});
