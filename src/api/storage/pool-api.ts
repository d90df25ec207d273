import { create } from "@bufbuild/protobuf";
import { PoolDriverSchema, PoolParameterType, PoolSchema, type Pool } from "../../../gen/steward/v1/pool_pb";
import type { PoolService } from "../../../gen/steward/v1/pool_service_pb";
import { InvalidFieldError } from "../../core/errors";
import { pageOf, type PageTokens } from "../../core/shared/page-token";
import type { PoolView, Pools } from "../../core/storage/pools";
import type { StorageDriverInfo, StorageDriverParameterType } from "../../ports/storage-driver";
import type { ServiceImpl } from "../../server/service-impl";
import { byteCount } from "../byte-counts";

export interface PoolParts {
  pools: Pools;
  pageTokens: PageTokens;
}

const PARAMETER_TYPES: Record<StorageDriverParameterType, PoolParameterType> = {
  str: PoolParameterType.STRING,
  int: PoolParameterType.INT,
  bool: PoolParameterType.BOOL,
  path: PoolParameterType.PATH,
};

/** PoolService: pools of the host (Qubes' pool.*, machined's pool calls). */
export function poolApi({ pools, pageTokens }: PoolParts): ServiceImpl<typeof PoolService> {
  return {
    listPoolDrivers: async () => ({ drivers: pools.drivers().map(driverMessage) }),
    listPools: async (request) => {
      const page = pageOf(await pools.list(), (pool) => pool.name, request, pageTokens, { list: "pools" });
      return { pools: page.items.map(poolMessage), nextPageToken: page.nextPageToken };
    },
    getPool: async (request) => ({ pool: poolMessage(await pools.get(request.pool)) }),
    addPool: async (request, ctx) => ({ pool: poolMessage(await pools.add(request.name, request.driver, request.parameters, ctx, request.requestId)) }),
    removePool: async (request, ctx) => {
      await pools.remove(request.pool, ctx);
      return {};
    },
    setPoolProperty: async (request, ctx) => {
      const { property } = request;
      if (property.case === undefined) throw new InvalidFieldError("property", "is required: revisions_to_keep or ephemeral_volatile");
      const change = property.case === "revisionsToKeep" ? { revisionsToKeep: property.value } : { ephemeralVolatile: property.value };
      return { pool: poolMessage(await pools.setProperty(request.pool, change, ctx)) };
    },
    setPoolLimit: async (request, ctx) => ({ pool: poolMessage(await pools.setLimit(request.pool, byteCount(request.limitBytes, "limit_bytes"), ctx)) }),
  };
}

function driverMessage(driver: StorageDriverInfo) {
  return create(PoolDriverSchema, {
    name: driver.name,
    description: driver.description,
    parameters: driver.parameters.map((parameter) => ({
      name: parameter.name,
      description: parameter.help,
      required: parameter.required,
      type: PARAMETER_TYPES[parameter.type],
      defaultValue: parameter.default ?? "",
    })),
  });
}

export function poolMessage(pool: PoolView): Pool {
  return create(PoolSchema, {
    name: pool.name,
    driver: pool.driver,
    parameters: { ...pool.parameters },
    sizeBytes: BigInt(pool.sizeBytes),
    usageBytes: BigInt(pool.usageBytes),
    limitBytes: BigInt(pool.limitBytes),
    revisionsToKeep: pool.revisionsToKeep,
    ephemeralVolatile: pool.ephemeralVolatile,
    volumeCount: pool.volumeCount,
    freeBytes: BigInt(pool.freeBytes),
  });
}
