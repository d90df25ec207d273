import * as fs from "node:fs";
import * as path from "node:path";
import { FileReflinkStorageDriver } from "../../src/adapters/storage/file-reflink/file-reflink-storage-driver";
import { makeLoopFilesystem, type LoopFilesystem } from "../fixtures/loop-filesystem";
import { storageDriverContract } from "./storage-driver.contract";

/** One btrfs filesystem for the file, each test with a fresh pool folder on it. */
let btrfs: LoopFilesystem;
let pools = 0;

beforeAll(() => {
  btrfs = makeLoopFilesystem("btrfs", 512);
});

afterAll(() => btrfs?.remove());

storageDriverContract(
  "file-reflink",
  async () => {
    const folder = path.join(btrfs.mountPoint, `pool-${++pools}`);
    return { driver: await FileReflinkStorageDriver.open(folder), cleanup: async () => fs.rmSync(folder, { recursive: true, force: true }) };
  },
  { cheapClone: true },
);
