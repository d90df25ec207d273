import * as fs from "node:fs";
import * as path from "node:path";
import { RawFileReader } from "../../../../src/adapters/storage/shared/raw-file-io";
import { makeTempDir, removeDir } from "../../../fixtures/temp-dir";

describe("RawFileReader", () => {
  let dir: string;

  beforeEach(() => (dir = makeTempDir("steward-raw-reader-")));
  afterEach(() => removeDir(dir));

  it("reads as zeroes, into the caller's buffer too, what a file that shrank under it no longer has", async () => {
    const file = path.join(dir, "v.img");
    fs.writeFileSync(file, Buffer.alloc(8192, 7));
    const reader = await RawFileReader.open("v", file);
    try {
      fs.truncateSync(file, 3000);
      const buffer = new Uint8Array(8192).fill(0xee);
      const read = await reader.read(0, 8192, buffer);
      expect(read.buffer).toBe(buffer.buffer);
      expect(read.subarray(0, 3000).every((byte) => byte === 7)).toBe(true);
      expect(read.subarray(3000).every((byte) => byte === 0)).toBe(true);
      expect((await reader.read(4096, 4096)).every((byte) => byte === 0)).toBe(true);
    } finally {
      await reader.close();
    }
  });
});
