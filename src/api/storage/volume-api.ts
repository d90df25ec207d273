import type { VolumeService } from "../../../gen/steward/v1/volume_service_pb";
import type { ServiceImpl } from "../../server/service-impl";
import { notYetImplemented } from "../not-implemented";

/** VolumeService: the contract is complete; the behaviour comes with a later issue. */
export function volumeApi(): ServiceImpl<typeof VolumeService> {
  return {
    listVolumes: notYetImplemented,
    getVolume: notYetImplemented,
    createVolume: notYetImplemented,
    deleteVolume: notYetImplemented,
    listSnapshots: notYetImplemented,
    snapshotVolume: notYetImplemented,
    revertVolume: notYetImplemented,
    resizeVolume: notYetImplemented,
    clearVolume: notYetImplemented,
    importVolume: notYetImplemented,
    exportVolume: notYetImplemented,
    cloneVolume: notYetImplemented,
    attachVolume: notYetImplemented,
    detachVolume: notYetImplemented,
    setVolumeProperty: notYetImplemented,
    setVolumeLimit: notYetImplemented,
  };
}
