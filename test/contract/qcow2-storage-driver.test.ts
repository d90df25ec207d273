import * as path from "node:path";
import { Qcow2StorageDriver } from "../../src/adapters/storage/qcow2/qcow2-storage-driver";
import { makeTempDir, removeDir } from "../fixtures/temp-dir";
import { storageDriverContract } from "./storage-driver.contract";

storageDriverContract(
  "qcow2",
  async () => {
    const dir = makeTempDir("steward-qcow2-pool-");
    return { driver: await Qcow2StorageDriver.open(path.join(dir, "pool")), cleanup: async () => removeDir(dir) };
  },
  { cheapClone: true },
);
