import { MemoryStorageDriver } from "../../src/adapters/storage/memory/memory-storage-driver";
import { storageDriverContract } from "./storage-driver.contract";

storageDriverContract("memory", async () => ({ driver: new MemoryStorageDriver(), cleanup: async () => {} }), { cheapClone: true });
