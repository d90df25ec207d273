import { execFileSync, spawn } from "node:child_process";
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

/** Writes `byte` over 64 KiB at `offset` into the volume's current image itself, as its VM's QEMU would: the image stays an overlay. */
function guestWrites(file: string, offset: number, byte: number): void {
  execFileSync("qemu-io", ["-f", "qcow2", "-c", `write -P ${byte} ${offset} 64k`, file], { stdio: "ignore" });
}

function backingOf(file: string): string | undefined {
  const info = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", "-U", file], { encoding: "utf8" })) as { "backing-filename"?: string };
  return info["backing-filename"];
}

/** The dirty ranges of a bitmap of the image, as a qemu-storage-daemon exports them over NBD and nbdinfo maps them. */
async function dirtyRanges(file: string, bitmap: string): Promise<[number, number][]> {
  const socket = `${file}.nbd`;
  const daemon = spawn("qemu-storage-daemon", [
    "--blockdev", `driver=file,node-name=f,filename=${file},read-only=on`,
    "--blockdev", "driver=qcow2,node-name=q,file=f,read-only=on",
    "--nbd-server", `addr.type=unix,addr.path=${socket}`,
    "--export", `type=nbd,id=e,node-name=q,name=e,bitmaps.0=${bitmap}`,
  ], { stdio: "ignore" });
  try {
    let out = "";
    // The socket's file comes before the daemon listens on it.
    for (let waited = 0; out === ""; waited += 20) {
      if (daemon.exitCode !== null || waited > 5000) throw new Error("qemu-storage-daemon did not serve the image");
      await new Promise((resolve) => setTimeout(resolve, 20));
      try {
        out = execFileSync("nbdinfo", ["--json", `--map=qemu:dirty-bitmap:${bitmap}`, `nbd+unix:///e?socket=${socket}`], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
      } catch {
        // Not listening yet.
      }
    }
    return (JSON.parse(out) as { offset: number; length: number; type: number }[]).filter((entry) => (entry.type & 1) === 1).map((entry) => [entry.offset, entry.length]);
  } finally {
    if (daemon.exitCode === null) {
      const exited = new Promise((resolve) => daemon.once("exit", resolve));
      daemon.kill("SIGKILL");
      await exited;
    }
  }
}

describe("qcow2 pools", () => {
  let dir: string;
  let root: string;

  beforeEach(() => {
    dir = makeTempDir("steward-qcow2-");
    root = path.join(dir, "pool");
  });

  afterEach(() => removeDir(dir));

  it("keep a volume's dirty bitmaps through a snapshot, with what they recorded before it and after", async () => {
    const driver = await Qcow2StorageDriver.open(root);
    await driver.create("disk", 8 * MiB);
    await driver.addBitmap("disk", "b1", 65536);
    const file = path.join(root, "disk.qcow2");
    guestWrites(file, MiB, 1);
    await driver.snapshot("disk");
    guestWrites(file, 4 * MiB, 2);
    expect(await driver.bitmaps("disk")).toEqual([{ name: "b1", granularityBytes: 65536, recording: true, inconsistent: false }]);
    expect(await dirtyRanges(file, "b1")).toEqual([
      [MiB, 64 * 1024],
      [4 * MiB, 64 * 1024],
    ]);
    await driver.clearBitmap("disk", "b1");
    expect(await dirtyRanges(file, "b1")).toEqual([]);
    expect(await driver.removeBitmap("disk", "b1")).toBe(true);
    expect(await driver.removeBitmap("disk", "b1")).toBe(false);
    expect(await driver.bitmaps("disk")).toEqual([]);
  });

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

  it("drop the oldest of a 10 GiB volume's revisions by merging the next one into it, at the cost of the next one's data", async () => {
    const driver = await Qcow2StorageDriver.open(root);
    const top = path.join(root, "big.qcow2");
    await driver.create("big", 10 * GiB);
    guestWrites(top, 0, 1);
    const first = await driver.snapshot("big");
    guestWrites(top, 5 * GiB, 2);
    const second = await driver.snapshot("big");
    guestWrites(top, 0, 3);
    expect(await driver.deleteRevision("big", first.id)).toBe(true);
    expect((await driver.revisions("big")).map((r) => r.id)).toEqual([second.id]);
    // The second revision holds what it held, the first's data included; the volume too.
    expect([await byteAt(driver, "big", 0, second.id), await byteAt(driver, "big", 5 * GiB, second.id)]).toEqual([1, 2]);
    expect([await byteAt(driver, "big", 0), await byteAt(driver, "big", 5 * GiB)]).toEqual([3, 2]);
    expect(backingOf(path.join(root, `big.qcow2.${second.id}~`))).toBeUndefined();
    expect(backingOf(top)).toBe(`big.qcow2.${second.id}~`);
    expect(fs.readdirSync(root).filter((name) => name.endsWith(".merge~"))).toEqual([]);
  });

  it("finish at their start a merge that a crash cut short, before or after qemu-img commit", async () => {
    for (const committed of [false, true]) {
      const driver = await Qcow2StorageDriver.open(root);
      const top = path.join(root, "v.qcow2");
      await driver.create("v", 64 * MiB);
      guestWrites(top, 0, 1);
      const first = await driver.snapshot("v");
      guestWrites(top, MiB, 2);
      const second = await driver.snapshot("v");
      const image = path.join(root, `v.qcow2.${first.id}~`);
      const child = path.join(root, `v.qcow2.${second.id}~`);
      // What mergeInto leaves when it dies: its marker, and the commit done or not.
      fs.writeFileSync(`${image}.merge~`, path.basename(child));
      if (committed) execFileSync("qemu-img", ["commit", "-q", "-f", "qcow2", "-d", child]);
      const reopened = await Qcow2StorageDriver.open(root);
      expect({ committed, revisions: (await reopened.revisions("v")).map((r) => r.id) }).toEqual({ committed, revisions: [second.id] });
      expect([await byteAt(reopened, "v", 0, second.id), await byteAt(reopened, "v", MiB, second.id)]).toEqual([1, 2]);
      expect(fs.readdirSync(root).filter((name) => name.endsWith("~") && name !== "tmp~")).toEqual([`v.qcow2.${second.id}~`]);
      await reopened.delete("v");
    }
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
