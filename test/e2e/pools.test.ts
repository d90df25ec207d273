import * as grpc from "@grpc/grpc-js";
import * as fs from "node:fs";
import * as path from "node:path";
import { randomUUID } from "node:crypto";
import { HostService } from "../../gen/steward/v1/host_service_pb";
import { PoolParameterType } from "../../gen/steward/v1/pool_pb";
import { PoolService } from "../../gen/steward/v1/pool_service_pb";
import { StewardApp } from "../../src/app/app";
import { createClient, type StewardClient } from "../../src/client/steward-client";
import { parseServeConfig } from "../../src/config";
import { LogCapture } from "../fixtures/log-capture";
import { rpcError } from "../fixtures/expect-rpc-error";
import { makeLoopFilesystem, type LoopFilesystem } from "../fixtures/loop-filesystem";
import { stopAndReadEvents } from "../fixtures/stored-events";
import { startTestServer, type TestServer } from "../fixtures/test-server";
import { makeTempDir, removeDir } from "../fixtures/temp-dir";

describe("pools", () => {
  let server: TestServer;
  let pools: StewardClient<typeof PoolService>;
  let host: StewardClient<typeof HostService>;
  let elsewhere: string;
  let btrfs: LoopFilesystem;

  beforeAll(async () => {
    btrfs = makeLoopFilesystem("btrfs", 256);
    elsewhere = makeTempDir("steward-pools-");
    server = await startTestServer();
    pools = createClient(PoolService, server.tcp);
    host = createClient(HostService, server.tcp);
  });

  afterAll(async () => {
    pools?.close();
    host?.close();
    await server?.stop();
    removeDir(elsewhere);
    btrfs?.remove();
  });

  it("lists the drivers of the registry, each with its parameters' types, defaults and help", async () => {
    const { drivers } = await pools.listPoolDrivers({});
    expect(drivers.map((driver) => driver.name)).toEqual(["file", "file-reflink", "qcow2"]);
    for (const driver of drivers) {
      expect(driver.description).not.toBe("");
      expect(driver.parameters.map((p) => [p.name, p.type, p.required, p.defaultValue])).toEqual([
        ["dir_path", PoolParameterType.PATH, true, ""],
        ["revisions_to_keep", PoolParameterType.INT, false, "1"],
        ["ephemeral_volatile", PoolParameterType.BOOL, false, "false"],
      ]);
      for (const parameter of driver.parameters) expect(parameter.description).not.toBe("");
    }
  });

  it("has a default pool from the first start, in the data folder, which default_pool names", async () => {
    const { pool } = await pools.getPool({ pool: "default" });
    expect(pool).toMatchObject({ name: "default", driver: "file", parameters: { dir_path: path.join(server.dataDir, "pools", "default") }, revisionsToKeep: 1, volumeCount: 0 });
    expect(fs.statSync(path.join(server.dataDir, "pools", "default")).isDirectory()).toBe(true);
    // The data folder's filesystem: its size and free space, and what the (empty) pool takes.
    const { bsize, blocks, bavail } = fs.statfsSync(server.dataDir);
    expect(Number(pool!.sizeBytes)).toBe(bsize * blocks);
    expect(Number(pool!.freeBytes)).toBeGreaterThan(0);
    expect(Math.abs(Number(pool!.freeBytes) - bsize * bavail)).toBeLessThan(bsize * blocks * 0.05);
    expect((await host.getGlobalProperty({ name: "default_pool" })).property?.value?.kind).toEqual({ case: "strValue", value: "default" });
    const removal = await rpcError(pools.removePool({ pool: "default" }));
    expect(removal.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(removal.info).toMatchObject({ reason: "POOL_IN_USE" });
    expect(removal.details).toMatch(/default_pool/);
  });

  it("adds a file-reflink pool on a filesystem with reflinks, and refuses one without, saying so", async () => {
    const { pool } = await pools.addPool({ name: "fast", driver: "file-reflink", parameters: { dir_path: path.join(btrfs.mountPoint, "fast"), revisions_to_keep: "3" } });
    expect(pool).toMatchObject({ name: "fast", driver: "file-reflink", revisionsToKeep: 3, ephemeralVolatile: false, parameters: { dir_path: path.join(btrfs.mountPoint, "fast") } });
    expect(Number(pool!.sizeBytes)).toBeGreaterThan(200 * 1024 * 1024);
    expect(Number(pool!.sizeBytes)).toBeLessThanOrEqual(256 * 1024 * 1024);

    const refused = await rpcError(pools.addPool({ name: "slow", driver: "file-reflink", parameters: { dir_path: path.join(elsewhere, "slow") } }));
    expect(refused.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(refused.info).toMatchObject({ reason: "POOL_LOCATION_UNUSABLE" });
    expect(refused.details).toMatch(/cannot make reflinks/);
    expect((await rpcError(pools.getPool({ pool: "slow" }))).info).toMatchObject({ reason: "POOL_NOT_FOUND" });
  });

  it("refuses a folder inside another pool, one holding another pool, and Steward's own files", async () => {
    await pools.addPool({ name: "outer", driver: "file", parameters: { dir_path: path.join(elsewhere, "outer") } });
    const places = [
      [path.join(elsewhere, "outer", "inner"), /inside the folder of pool outer/],
      [elsewhere, /holds the folder of pool outer/],
      [server.dataDir, /holds Steward's own files|holds the folder of pool default/],
      [path.join(server.dataDir, "state"), /among Steward's own files/],
      [path.dirname(server.dataDir), /holds/],
    ] as const;
    for (const [place, why] of places) {
      const refused = await rpcError(pools.addPool({ name: "nested", driver: "file", parameters: { dir_path: place } }));
      expect({ place, code: refused.code, reason: refused.info?.reason }).toEqual({ place, code: grpc.status.FAILED_PRECONDITION, reason: "POOL_LOCATION_UNUSABLE" });
      expect(refused.details).toMatch(why);
    }
    // A symlink to a pool's folder is that folder.
    fs.symlinkSync(path.join(elsewhere, "outer"), path.join(elsewhere, "alias"));
    expect((await rpcError(pools.addPool({ name: "nested", driver: "file", parameters: { dir_path: path.join(elsewhere, "alias", "x") } }))).info).toMatchObject({ reason: "POOL_LOCATION_UNUSABLE" });
    // But a pool of its own in Steward's pools folder is fine.
    await pools.addPool({ name: "local", driver: "file", parameters: { dir_path: path.join(server.dataDir, "pools", "local") } });
    // The kernel's own filesystems hold no pool, and saying so does not hang (a recursive mkdir in /proc never returns).
    for (const [place, kind] of [
      ["/proc/steward-pool/disks", "procfs"],
      ["/sys/fs/steward-pool", "sysfs"],
    ]) {
      const refused = await rpcError(pools.addPool({ name: "pseudo", driver: "file", parameters: { dir_path: place } }, { timeoutMs: 5000 }));
      expect({ place, code: refused.code, reason: refused.info?.reason }).toEqual({ place, code: grpc.status.FAILED_PRECONDITION, reason: "POOL_LOCATION_UNUSABLE" });
      expect(refused.details).toContain(kind);
    }
    expect(fs.existsSync("/proc/steward-pool")).toBe(false);
  });

  it("refuses bad names, drivers and parameters, naming the field", async () => {
    const cases = [
      [{ name: "9lives", driver: "file", parameters: { dir_path: path.join(elsewhere, "a") } }, "name", "INVALID_POOL_NAME"],
      [{ name: "a", driver: "zfs", parameters: {} }, "driver", "POOL_DRIVER_NOT_FOUND"],
      [{ name: "a", driver: "file", parameters: {} }, "parameters[dir_path]", "INVALID_POOL_DRIVER_PARAMETER"],
      [{ name: "a", driver: "file", parameters: { dir_path: "relative/path" } }, "parameters[dir_path]", "INVALID_POOL_DRIVER_PARAMETER"],
      [{ name: "a", driver: "file", parameters: { dir_path: path.join(elsewhere, "a"), colour: "red" } }, "parameters[colour]", "INVALID_POOL_DRIVER_PARAMETER"],
      [{ name: "a", driver: "file", parameters: { dir_path: path.join(elsewhere, "a"), revisions_to_keep: "many" } }, "parameters[revisions_to_keep]", undefined],
    ] as const;
    for (const [request, field, reason] of cases) {
      const refused = await rpcError(pools.addPool(request));
      expect({ request, code: refused.code, field: refused.info?.fieldViolations[0]?.field }).toEqual({ request, code: grpc.status.INVALID_ARGUMENT, field });
      if (reason) expect(refused.info?.reason).toBe(reason);
    }
    expect((await rpcError(pools.addPool({ name: "default", driver: "file", parameters: { dir_path: path.join(elsewhere, "b") } }))).info).toMatchObject({ reason: "POOL_EXISTS" });
  });

  it("adds once per request_id: a retry returns the pool the first call added", async () => {
    const request = { name: "retried", driver: "file", parameters: { dir_path: path.join(elsewhere, "retried") }, requestId: randomUUID() };
    const first = await pools.addPool(request);
    const again = await pools.addPool(request);
    expect(again.pool).toEqual(first.pool);
  });

  it("sets properties and a limit, refusing a limit below what the pool uses, and removes a pool but keeps its files", async () => {
    await pools.addPool({ name: "tuned", driver: "file", parameters: { dir_path: path.join(elsewhere, "tuned") } });
    expect((await pools.setPoolProperty({ pool: "tuned", property: { case: "revisionsToKeep", value: 5 } })).pool?.revisionsToKeep).toBe(5);
    expect((await pools.setPoolProperty({ pool: "tuned", property: { case: "ephemeralVolatile", value: true } })).pool?.ephemeralVolatile).toBe(true);
    expect((await rpcError(pools.setPoolProperty({ pool: "tuned", property: { case: "revisionsToKeep", value: 100000 } }))).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect((await rpcError(pools.setPoolProperty({ pool: "tuned", property: { case: undefined } }))).info?.fieldViolations[0]?.field).toBe("property");

    const limited = await pools.setPoolLimit({ pool: "tuned", limitBytes: 1n << 30n });
    expect(limited.pool).toMatchObject({ limitBytes: 1n << 30n, sizeBytes: 1n << 30n });
    fs.writeFileSync(path.join(elsewhere, "tuned", "big.img"), Buffer.alloc(256 * 1024, 1));
    // A file someone else put in the folder is no volume of Steward's, but it is bytes the pool uses.
    expect((await pools.getPool({ pool: "tuned" })).pool?.volumeCount).toBe(0);
    const over = await rpcError(pools.setPoolLimit({ pool: "tuned", limitBytes: 4096n }));
    expect(over.info).toMatchObject({ reason: "POOL_OVER_LIMIT" });
    expect((await pools.getPool({ pool: "tuned" })).pool?.limitBytes).toBe(1n << 30n);

    const holding = await rpcError(pools.removePool({ pool: "tuned" }));
    expect(holding.info).toMatchObject({ reason: "POOL_IN_USE" });
    expect(holding.details).toMatch(/big/);
    fs.rmSync(path.join(elsewhere, "tuned", "big.img"));
    await pools.removePool({ pool: "tuned" });
    expect(fs.existsSync(path.join(elsewhere, "tuned"))).toBe(true);
    expect((await rpcError(pools.removePool({ pool: "tuned" }))).info).toMatchObject({ reason: "POOL_NOT_FOUND" });
  });

  it("lists pools by name, paged", async () => {
    const names = (await pools.listPools({})).pools.map((pool) => pool.name);
    expect(names).toEqual([...names].sort());
    const first = await pools.listPools({ pageSize: 1 });
    expect(first.pools).toHaveLength(1);
    const second = await pools.listPools({ pageSize: 100, pageToken: first.nextPageToken });
    expect([...first.pools, ...second.pools].map((pool) => pool.name)).toEqual(names);
  });
});

describe("pool events and restarts", () => {
  it("tell pool-add, pool-set and pool-delete; pools stay across a restart, and the default pool is made once", async () => {
    const dir = makeTempDir();
    const elsewhere = makeTempDir("steward-pools-");
    const config = parseServeConfig(["--data-dir", dir, "--listen", `unix:${path.join(dir, "s.sock")}`, "--hypervisor", "sim"], {});
    try {
      const first = await StewardApp.start(config, new LogCapture().log);
      const pools = createClient(PoolService, first.server.addresses[0]);
      await pools.addPool({ name: "kept", driver: "file", parameters: { dir_path: path.join(elsewhere, "kept") } });
      await pools.setPoolLimit({ pool: "kept", limitBytes: 1n << 20n });
      await pools.addPool({ name: "gone", driver: "file", parameters: { dir_path: path.join(elsewhere, "gone") } });
      await pools.removePool({ pool: "gone" });
      pools.close();
      await first.stop();

      const second = await StewardApp.start(config, new LogCapture().log);
      const again = createClient(PoolService, second.server.addresses[0]);
      expect((await again.listPools({})).pools.map((pool) => [pool.name, pool.limitBytes])).toEqual([
        ["default", 0n],
        ["kept", 1n << 20n],
        ["linux-kernel", 0n],
      ]);
      again.close();
      const events = (await stopAndReadEvents({ app: second, dataDir: dir } as TestServer)).filter((event) => event.name.startsWith("pool-"));
      expect(events.map((event) => [event.name, event.kwargs])).toEqual([
        ["pool-add", { pool: "default", driver: "file" }],
        ["pool-add", { pool: "kept", driver: "file" }],
        ["pool-set:limit_bytes", { pool: "kept", newvalue: String(1 << 20), oldvalue: "0" }],
        ["pool-add", { pool: "gone", driver: "file" }],
        ["pool-delete", { pool: "gone" }],
      ]);
    } finally {
      removeDir(elsewhere);
      removeDir(dir);
    }
  });
});
