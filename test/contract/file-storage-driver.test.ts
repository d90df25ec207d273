import * as path from "node:path";
import { FileStorageDriver } from "../../src/adapters/storage/file/file-storage-driver";
import { makeTempDir, removeDir } from "../fixtures/temp-dir";
import { storageDriverContract } from "./storage-driver.contract";

storageDriverContract("file", async () => {
  const dir = makeTempDir("steward-file-pool-");
  return { driver: await FileStorageDriver.open(path.join(dir, "pool")), cleanup: async () => removeDir(dir) };
});
