import type { BackupService } from "../../../gen/steward/v1/backup_service_pb";
import type { ServiceImpl } from "../../server/service-impl";
import { notYetImplemented } from "../not-implemented";

/** BackupService: the contract is complete; the behaviour comes with a later issue. */
export function backupApi(): ServiceImpl<typeof BackupService> {
  return {
    createBackupProfile: notYetImplemented,
    getBackupProfile: notYetImplemented,
    listBackupProfiles: notYetImplemented,
    deleteBackupProfile: notYetImplemented,
    executeBackup: notYetImplemented,
    cancelBackup: notYetImplemented,
    getBackupInfo: notYetImplemented,
    restoreBackup: notYetImplemented,
  };
}
