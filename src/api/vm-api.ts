import type { VmService } from "../../gen/steward/v1/vm_service_pb";
import type { ServiceImpl } from "../server/service-impl";
import { notYetImplemented } from "./not-implemented";

/** VmService: the contract is complete; the behaviour comes with a later issue. */
export function vmApi(): ServiceImpl<typeof VmService> {
  return {
    listVms: notYetImplemented,
    getVm: notYetImplemented,
    createVm: notYetImplemented,
    createDisposableVm: notYetImplemented,
    cloneVm: notYetImplemented,
    renameVm: notYetImplemented,
    removeVm: notYetImplemented,
    startVm: notYetImplemented,
    shutdownVm: notYetImplemented,
    pauseVm: notYetImplemented,
    unpauseVm: notYetImplemented,
    killVm: notYetImplemented,
    suspendVm: notYetImplemented,
    resumeVm: notYetImplemented,
    listProperties: notYetImplemented,
    getProperty: notYetImplemented,
    setProperty: notYetImplemented,
    resetProperty: notYetImplemented,
    describeProperty: notYetImplemented,
    listFeatures: notYetImplemented,
    getFeature: notYetImplemented,
    setFeature: notYetImplemented,
    removeFeature: notYetImplemented,
    checkFeature: notYetImplemented,
    listTags: notYetImplemented,
    hasTag: notYetImplemented,
    addTag: notYetImplemented,
    removeTag: notYetImplemented,
    getNotes: notYetImplemented,
    setNotes: notYetImplemented,
    getVmStats: notYetImplemented,
    watchVmStats: notYetImplemented,
    console: notYetImplemented,
    getVmAddresses: notYetImplemented,
    getVmOsRelease: notYetImplemented,
  };
}
