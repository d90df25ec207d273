import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { VolumeBitmapSchema, VolumeFormat, VolumeRevisionSchema, VolumeSchema, type Volume, type VolumeBitmap as VolumeBitmapMessage, type VolumeRevision } from "../../../gen/steward/v1/volume_pb";
import { InvalidFieldError } from "../../core/errors";
import type { VolumeFormat as DomainVolumeFormat } from "../../core/model/volume";
import type { VolumeView } from "../../core/storage/volumes";
import type { Revision, VolumeBitmap } from "../../ports/storage-driver";

const FORMATS: Record<DomainVolumeFormat, VolumeFormat> = { raw: VolumeFormat.RAW, qcow2: VolumeFormat.QCOW2 };

/** A request's format; undefined for UNSPECIFIED (the pool's own). */
export function volumeFormatName(format: VolumeFormat, field: string): DomainVolumeFormat | undefined {
  switch (format) {
    case VolumeFormat.UNSPECIFIED:
      return undefined;
    case VolumeFormat.RAW:
      return "raw";
    case VolumeFormat.QCOW2:
      return "qcow2";
    default:
      throw new InvalidFieldError(field, `${String(format)} is no VolumeFormat`);
  }
}

export function volumeMessage(volume: VolumeView): Volume {
  return create(VolumeSchema, {
    pool: volume.pool,
    vid: volume.vid,
    vm: volume.vmName,
    name: volume.name,
    sizeBytes: BigInt(volume.sizeBytes),
    usageBytes: BigInt(volume.usageBytes),
    rw: volume.rw,
    source: volume.source,
    saveOnStop: volume.saveOnStop,
    snapOnStart: volume.snapOnStart,
    revisionsToKeep: volume.effectiveRevisionsToKeep,
    ephemeral: volume.ephemeral,
    format: FORMATS[volume.format],
    limitBytes: BigInt(volume.limitBytes),
    createTime: timestampFromDate(volume.createdAt),
    internal: volume.internal,
    hostPath: volume.hostPath ?? "",
    attachments: volume.attachments,
    isOutdated: volume.isOutdated,
  });
}

export function revisionMessage(revision: Revision): VolumeRevision {
  return create(VolumeRevisionSchema, { revision: revision.id, createTime: timestampFromDate(revision.createdAt), sizeBytes: BigInt(revision.sizeBytes) });
}

export function bitmapMessage(bitmap: VolumeBitmap): VolumeBitmapMessage {
  return create(VolumeBitmapSchema, { name: bitmap.name, granularityBytes: BigInt(bitmap.granularityBytes), recording: bitmap.recording, inconsistent: bitmap.inconsistent });
}
