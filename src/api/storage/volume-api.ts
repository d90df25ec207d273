import type { VolumeService } from "../../../gen/steward/v1/volume_service_pb";
import { InvalidFieldError } from "../../core/errors";
import { pageOf, type PageTokens } from "../../core/shared/page-token";
import type { Volumes } from "../../core/storage/volumes";
import type { ServiceImpl } from "../../server/service-impl";
import { byteCount } from "../byte-counts";
import { notYetImplemented } from "../not-implemented";
import { revisionMessage, volumeFormatName, volumeMessage } from "./volume-messages";

export interface VolumeParts {
  volumes: Volumes;
  pageTokens: PageTokens;
}

/**
 * VolumeService: volumes of pools and VMs. Import, export, clone and attachments come with the
 * rest of the storage work and answer UNIMPLEMENTED until then.
 */
export function volumeApi({ volumes, pageTokens }: VolumeParts): ServiceImpl<typeof VolumeService> {
  return {
    listVolumes: async (request) => {
      if ((request.pool === "") === (request.vm === "")) throw new InvalidFieldError("pool", "give exactly one of pool and vm");
      const all = request.pool !== "" ? await volumes.inPool(request.pool) : await volumes.ofVm(request.vm);
      const page = pageOf(all, (volume) => `${volume.pool}/${volume.vid}`, request, pageTokens, { list: "volumes", pool: request.pool, vm: request.vm });
      return {
        volumes: page.items.map(volumeMessage),
        nextPageToken: page.nextPageToken,
        totalUsageBytes: BigInt(all.reduce((sum, volume) => sum + volume.usageBytes, 0)),
        totalSize: all.length,
      };
    },
    getVolume: async (request) => ({ volume: volumeMessage(await volumes.get(volumes.resolve(request.volume))) }),
    createVolume: async (request, ctx) => {
      if (request.pool === "") throw new InvalidFieldError("pool", "is required");
      if (request.vid === "") throw new InvalidFieldError("vid", "is required");
      const format = volumeFormatName(request.format, "format");
      const made = await volumes.create(request.pool, request.vid, byteCount(request.sizeBytes, "size_bytes"), format, ctx, request.requestId);
      return { volume: volumeMessage(made.volume), existed: made.existed };
    },
    deleteVolume: async (request, ctx) => {
      if (request.pool === "") throw new InvalidFieldError("pool", "is required");
      if (request.vid === "") throw new InvalidFieldError("vid", "is required");
      return { deleted: await volumes.delete({ pool: request.pool, vid: request.vid }, ctx) };
    },
    listSnapshots: async (request) => {
      const revisions = await volumes.revisions(volumes.resolve(request.volume));
      const page = pageOf(revisions, (revision) => String(Number.MAX_SAFE_INTEGER - Number(revision.id)).padStart(16, "0"), request, pageTokens, { list: "revisions", ...refOf(request.volume) });
      return { revisions: page.items.map(revisionMessage), nextPageToken: page.nextPageToken };
    },
    snapshotVolume: async (request, ctx) => ({ revision: revisionMessage(await volumes.snapshot(volumes.resolve(request.volume), ctx, request.requestId)) }),
    revertVolume: async (request, ctx) => ({ volume: volumeMessage(await volumes.revert(volumes.resolve(request.volume), request.revision, ctx)) }),
    resizeVolume: async (request, ctx) => ({
      volume: volumeMessage(await volumes.resize(volumes.resolve(request.volume), byteCount(request.sizeBytes, "size_bytes"), request.allowShrink, ctx)),
    }),
    clearVolume: async (request, ctx) => ({ volume: volumeMessage(await volumes.clear(volumes.resolve(request.volume), ctx)) }),
    importVolume: notYetImplemented,
    exportVolume: notYetImplemented,
    cloneVolume: notYetImplemented,
    attachVolume: notYetImplemented,
    detachVolume: notYetImplemented,
    setVolumeProperty: async (request, ctx) => {
      const { property } = request;
      if (property.case === undefined) throw new InvalidFieldError("property", "is required: revisions_to_keep, rw or ephemeral");
      const change = property.case === "revisionsToKeep" ? { revisionsToKeep: property.value } : property.case === "rw" ? { rw: property.value } : { ephemeral: property.value };
      return { volume: volumeMessage(await volumes.setProperty(volumes.resolve(request.volume), change, ctx)) };
    },
    setVolumeLimit: async (request, ctx) => ({ volume: volumeMessage(await volumes.setLimit(volumes.resolve(request.volume), byteCount(request.limitBytes, "limit_bytes"), ctx)) }),
  };
}

function refOf(ref: { vm: string; name: string; pool: string; vid: string } | undefined) {
  return { vm: ref?.vm ?? "", name: ref?.name ?? "", pool: ref?.pool ?? "", vid: ref?.vid ?? "" };
}
