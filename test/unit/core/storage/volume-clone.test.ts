import { SimHypervisor } from "../../../../src/adapters/hypervisor/sim/sim-hypervisor";
import { MEMORY_STORAGE_DRIVER, StorageDriverRegistry } from "../../../../src/adapters/storage/storage-drivers";
import { buildCore, type Core } from "../../../../src/app/build-core";
import { systemClock } from "../../../../src/ports/clock";
import { testContext } from "../../../fixtures/call-context";
import { LogCapture } from "../../../fixtures/log-capture";
import { storeForEach } from "../../../fixtures/temp-store";

const MiB = 1024 * 1024;
const EVENTS = { retained: 1000, heartbeatMs: 5000, subscriberBuffer: 1000 };

/** A content of `length` bytes, none of them zero, so that no chunk of it is a hole. */
function filled(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = ((i + seed) % 251) + 1;
  return bytes;
}

async function* chunksOf(content: Uint8Array): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < content.length; offset += MiB) yield content.subarray(offset, offset + MiB);
}

describe("Volumes.clone, copying across pools", () => {
  const opened = storeForEach();
  let core: Core;
  const source = { pool: "a", vid: "source" };
  const target = { pool: "b", vid: "target" };

  const read = async (key: { pool: string; vid: string }) => {
    let sha = "";
    for await (const item of core.volumes.export(key, "", MiB, testContext())) if (item.kind === "trailer") sha = item.sha256;
    return sha;
  };

  beforeEach(async () => {
    core = buildCore(
      { store: opened.current, hypervisor: new SimHypervisor(), clock: systemClock, log: new LogCapture().log, storage: new StorageDriverRegistry([MEMORY_STORAGE_DRIVER]) },
      { events: EVENTS, host: { version: "test", hostname: "test-host" } },
    );
    await core.adopt();
    for (const [key, seed] of [
      [source, 1],
      [target, 2],
    ] as const) {
      await core.pools.add(key.pool, "memory", {}, testContext());
      await core.volumes.create(key.pool, key.vid, 8 * MiB, undefined, testContext());
      await core.volumes.import(key, { sizeBytes: 8 * MiB, sha256: "", format: "raw" }, chunksOf(filled(8 * MiB, seed)), testContext());
    }
  });

  afterEach(() => core.release());

  it("tells its progress in bytes, chunk by chunk, up to the source's size", async () => {
    const told: [number, number][] = [];
    await core.volumes.clone(source, target, testContext(), (done, total) => told.push([done, total]));
    expect(told.length).toBeGreaterThanOrEqual(8);
    expect(told.every(([done, total], index) => total === 8 * MiB && (index === 0 || done >= told[index - 1][0]))).toBe(true);
    expect(told.at(-1)).toEqual([8 * MiB, 8 * MiB]);
    expect(await read(target)).toBe(await read(source));
  });

  it("leaves the target as it was when cancelled midway", async () => {
    const before = await read(target);
    const controller = new AbortController();
    const copying = core.volumes.clone(source, target, testContext(controller.signal), (done) => {
      if (done >= 2 * MiB) controller.abort();
    });
    await expect(copying).rejects.toMatchObject({ kind: "cancelled" });
    expect(await read(target)).toBe(before);
    expect(await read(target)).not.toBe(await read(source));
  });

  it("refuses a copy past the target pool's limit before writing a byte, naming the limit and the bytes", async () => {
    const before = await read(target);
    await core.pools.setLimit("b", 12 * MiB, testContext());
    await expect(core.volumes.clone(source, target, testContext())).rejects.toMatchObject({
      kind: "resource-exhausted",
      reason: "POOL_QUOTA_EXCEEDED",
      metadata: { pool: "b", limit_bytes: String(12 * MiB), needed_bytes: String(8 * MiB) },
    });
    expect(await read(target)).toBe(before);
  });
});
