import type { BlockExportService } from "../../../gen/steward/v1/block_export_service_pb";
import type { ServiceImpl } from "../../server/service-impl";
import { notYetImplemented } from "../not-implemented";

/** BlockExportService: the contract is complete; the behaviour comes with a later issue. */
export function blockExportApi(): ServiceImpl<typeof BlockExportService> {
  return {
    startNbdServer: notYetImplemented,
    stopNbdServer: notYetImplemented,
    addBlockExport: notYetImplemented,
    removeBlockExport: notYetImplemented,
    listBlockExports: notYetImplemented,
  };
}
