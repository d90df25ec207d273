import { SqliteStore } from "../../src/adapters/store/sqlite/sqlite-store";
import { makeTempDir, removeDir } from "../fixtures/temp-dir";
import { storeContract } from "./store.contract";

storeContract("SQLite", () => {
  const dir = makeTempDir();
  const store = SqliteStore.open(dir);
  return {
    store,
    cleanup: () => {
      store.close();
      removeDir(dir);
    },
  };
});
