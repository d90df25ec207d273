import { SimHypervisor } from "../../../../src/adapters/hypervisor/sim/sim-hypervisor";
import { MEMORY_STORAGE_DRIVER, StorageDriverRegistry } from "../../../../src/adapters/storage/storage-drivers";
import { buildCore, type Core } from "../../../../src/app/build-core";
import { systemClock } from "../../../../src/ports/clock";
import { testContext } from "../../../fixtures/call-context";
import { LogCapture } from "../../../fixtures/log-capture";
import { storeForEach } from "../../../fixtures/temp-store";

const MiB = 1024 * 1024;
const EVENTS = { retained: 1000, heartbeatMs: 5000, subscriberBuffer: 1000 };

describe("Volumes.delete, when the pool fails it", () => {
  const opened = storeForEach();
  let core: Core;
  const key = { pool: "a", vid: "v" };
  const deletes = () => opened.current.events.after(0, 1000).filter((event) => event.name === "volume-delete");

  beforeEach(async () => {
    core = buildCore(
      { store: opened.current, hypervisor: new SimHypervisor(), clock: systemClock, log: new LogCapture().log, storage: new StorageDriverRegistry([MEMORY_STORAGE_DRIVER]) },
      { events: EVENTS, host: { version: "test", hostname: "test-host" } },
    );
    await core.adopt();
    await core.pools.add("a", "memory", {}, testContext());
    await core.volumes.create("a", "v", MiB, undefined, testContext());
  });

  afterEach(() => core.release());

  it("leaves a volume whose content is whole as it was, untold, and deletes it the next time", async () => {
    const driver = core.pools.driver("a");
    jest.spyOn(driver, "delete").mockRejectedValueOnce(new Error("the disk said no"));
    await expect(core.volumes.delete(key, testContext())).rejects.toThrow("the disk said no");
    expect((await core.volumes.get(key)).state).toBe("ready");
    expect(deletes()).toHaveLength(0);
    expect(await core.volumes.delete(key, testContext())).toBe(true);
    expect(deletes()).toHaveLength(1);
  });

  it("leaves one whose content went half-way being deleted, and finishes it at the next CreateVolume of its vid", async () => {
    const driver = core.pools.driver("a");
    const realDelete = driver.delete.bind(driver);
    jest.spyOn(driver, "delete").mockImplementationOnce(async (vid) => {
      await realDelete(vid);
      throw new Error("cut short");
    });
    await expect(core.volumes.delete(key, testContext())).rejects.toThrow("cut short");
    expect(opened.current.volumes.get("a", "v")?.state).toBe("deleting");
    await expect(core.volumes.get(key)).rejects.toMatchObject({ kind: "not-found" });
    expect((await core.volumes.create("a", "v", 2 * MiB, undefined, testContext())).existed).toBe(false);
    expect((await core.volumes.get(key)).sizeBytes).toBe(2 * MiB);
    expect(deletes()).toHaveLength(1);
  });
});
