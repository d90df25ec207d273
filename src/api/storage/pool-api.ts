import type { PoolService } from "../../../gen/steward/v1/pool_service_pb";
import type { ServiceImpl } from "../../server/service-impl";
import { notYetImplemented } from "../not-implemented";

/** PoolService: the contract is complete; the behaviour comes with a later issue. */
export function poolApi(): ServiceImpl<typeof PoolService> {
  return {
    listPoolDrivers: notYetImplemented,
    listPools: notYetImplemented,
    getPool: notYetImplemented,
    addPool: notYetImplemented,
    removePool: notYetImplemented,
    setPoolProperty: notYetImplemented,
    setPoolLimit: notYetImplemented,
  };
}
