import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { Qcow2TooLargeError, writeEmptyQcow2, writeQcow2Overlay } from "../../../../src/adapters/storage/shared/qcow2-overlay";
import { makeTempDir, removeDir } from "../../../fixtures/temp-dir";

const GiB = 1024 * 1024 * 1024;

interface ImageInfo {
  "virtual-size": number;
  "cluster-size": number;
  "backing-filename"?: string;
  "backing-filename-format"?: string;
  "format-specific": { data: Record<string, unknown> };
}

function info(file: string): ImageInfo {
  return JSON.parse(execFileSync("qemu-img", ["info", "--output=json", "-U", file], { encoding: "utf8" })) as ImageInfo;
}

/** What qemu-img says of an image, but its own file's name and size. */
function described(file: string) {
  const { "virtual-size": size, "cluster-size": cluster, "backing-filename": backing, "backing-filename-format": backingFormat, "format-specific": specific } = info(file);
  return { size, cluster, backing, backingFormat, specific };
}

/** Runs qemu-img check: it exits non-zero on any error or leak. */
function check(file: string): void {
  execFileSync("qemu-img", ["check", "-q", "-f", "qcow2", file], { stdio: "pipe" });
}

function qemuIo(file: string, command: string): void {
  execFileSync("qemu-io", ["-f", "qcow2", "-c", command, file], { stdio: "pipe" });
}

describe("an empty qcow2 image or overlay written without qemu-img", () => {
  let dir: string;
  beforeEach(() => {
    dir = makeTempDir("steward-overlay-");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", path.join(dir, "base.qcow2"), String(10 * GiB)]);
    qemuIo(path.join(dir, "base.qcow2"), "write -P 0x5a 1M 64k");
  });
  afterEach(() => removeDir(dir));

  it.each([
    ["an empty volume", 0],
    ["one sector", 512],
    ["10 GiB", 10 * GiB],
    ["6 TiB, whose L1 table takes two clusters", 6 * 1024 * GiB],
  ])("is what qemu-img makes, for %s", async (_label, sizeBytes) => {
    const ours = path.join(dir, "ours.qcow2");
    const theirs = path.join(dir, "theirs.qcow2");
    await writeQcow2Overlay(ours, "base.qcow2", sizeBytes);
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-u", "-b", "base.qcow2", "-F", "qcow2", theirs, String(sizeBytes)]);
    check(ours);
    expect(described(ours)).toEqual(described(theirs));
    expect(fs.statSync(ours).size).toBe(fs.statSync(theirs).size);
    // Grown, its refcounts still add up (no cluster leaked), as the one qemu-img made.
    execFileSync("qemu-img", ["resize", "-q", "-f", "qcow2", ours, String(sizeBytes + GiB)]);
    check(ours);
  });

  it.each([
    ["an empty volume", 0],
    ["10 GiB", 10 * GiB],
  ])("without a backing file, is what qemu-img makes, for %s, and reads zeroes", async (_label, sizeBytes) => {
    const ours = path.join(dir, "ours.qcow2");
    const theirs = path.join(dir, "theirs.qcow2");
    await writeEmptyQcow2(ours, sizeBytes);
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", theirs, String(sizeBytes)]);
    check(ours);
    expect(described(ours)).toEqual(described(theirs));
    expect(fs.statSync(ours).size).toBe(fs.statSync(theirs).size);
    if (sizeBytes > 0) {
      qemuIo(ours, "read -P 0 1M 64k");
      qemuIo(ours, "write -P 0x21 1M 64k");
      check(ours);
      qemuIo(ours, "read -P 0x21 1M 64k");
    }
  });

  it("reads its backing file's bytes, and takes writes of its own with its refcounts whole", async () => {
    const ours = path.join(dir, "ours.qcow2");
    await writeQcow2Overlay(ours, "base.qcow2", 10 * GiB);
    qemuIo(ours, "read -P 0x5a 1M 64k");
    qemuIo(ours, "write -P 0x33 0 64k");
    check(ours);
    qemuIo(ours, "read -P 0x33 0 64k");
    qemuIo(ours, "read -P 0x5a 1M 64k");
    qemuIo(path.join(dir, "base.qcow2"), "read -P 0 0 64k");
  });

  it("never replaces a file that is there, and refuses a name or a size qemu would not take", async () => {
    const taken = path.join(dir, "taken.qcow2");
    fs.writeFileSync(taken, "someone's");
    await expect(writeQcow2Overlay(taken, "base.qcow2", GiB)).rejects.toMatchObject({ code: "EEXIST" });
    expect(fs.readFileSync(taken, "utf8")).toBe("someone's");
    await expect(writeQcow2Overlay(path.join(dir, "long.qcow2"), "x".repeat(1024), GiB)).rejects.toThrow(/1 to 1023 bytes/);
    // Past 2 PiB, as qemu-img refuses it.
    await expect(writeEmptyQcow2(path.join(dir, "huge.qcow2"), 4 * 1024 * 1024 * 1024 * 1024 * 1024)).rejects.toBeInstanceOf(Qcow2TooLargeError);
    expect(fs.existsSync(path.join(dir, "huge.qcow2"))).toBe(false);
  });
});
