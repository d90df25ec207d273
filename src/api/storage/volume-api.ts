import type { MessageInitShape } from "@bufbuild/protobuf";
import { CloneVolumeResponseSchema, type ExportVolumeResponseSchema, type ImportVolumeHeader, type ImportVolumeRequest, type VolumeService } from "../../../gen/steward/v1/volume_service_pb";
import type { Operations } from "../../core/operations/operations";
import { operationMessage, responseResult } from "../operations/operation-messages";
import { InvalidFieldError } from "../../core/errors";
import type { CallContext } from "../../core/shared/call-context";
import type { VmCreation } from "../../core/vms/vm-creation";
import type { NewVolumeContent } from "../../core/vms/vm-participant";
import type { CreateVmRequest } from "../../../gen/steward/v1/vm_service_pb";
import { newVmOf } from "../vms/new-vm-messages";
import { pageOf, type PageTokens } from "../../core/shared/page-token";
import type { VolumeAttachments } from "../../core/storage/volume-attachments";
import { checkSha256, type ExportItem, type Volumes } from "../../core/storage/volumes";
import type { ServiceImpl } from "../../server/service-impl";
import { byteCount } from "../byte-counts";
import { ExportChunkMessages } from "../encoding/export-chunk-encoding";
import type { VolumeBitmap } from "../../ports/storage-driver";
import { bitmapMessage, revisionMessage, volumeFormatName, volumeMessage } from "./volume-messages";

export interface VolumeParts {
  volumes: Volumes;
  creation: VmCreation;
  attachments: VolumeAttachments;
  operations: Operations;
  pageTokens: PageTokens;
}

/**
 * VolumeService: volumes of pools and VMs, their bytes, clones and attachments, and TemplateVMs
 * made by importing their root.
 */
export function volumeApi({ volumes, attachments, operations, pageTokens, creation }: VolumeParts): ServiceImpl<typeof VolumeService> {
  /** ImportVolume into the root of a TemplateVM it makes: the VM is stored once the whole stream arrived and checked out. */
  const importTemplate = async (header: ImportVolumeHeader, request: CreateVmRequest, chunks: AsyncIterable<Uint8Array>, ctx: CallContext) => {
    const field = "header.new_template";
    const asked = newVmOf(request, `${field}.`);
    if (asked.klass !== "TemplateVM") throw new InvalidFieldError(`${field}.klass`, "is TEMPLATE_VM: an import makes a TemplateVM, whose root the bytes become");
    if (asked.volumes?.root !== undefined) throw new InvalidFieldError(`${field}.volumes[root]`, "is the stream's to fill: give no other content for it");
    if (header.sizeBytes === 0n) throw new InvalidFieldError("header.size_bytes", "is required for new_template: the length of the bytes that follow");
    checkSha256(header.sha256, "header.sha256");
    let received = { bytesReceived: 0, sha256: "" };
    const root: NewVolumeContent = {
      kind: "stream",
      sizeBytes: byteCount(header.sizeBytes, "header.size_bytes"),
      sha256: header.sha256,
      format: volumeFormatName(header.format, "header.format") ?? "raw",
      chunks,
      received: (result) => (received = result),
    };
    const vm = await creation.createImported({ ...asked, volumes: { ...asked.volumes, root } }, request.requestId, ctx).catch((error: unknown) => {
      // The VM's fields are new_template's; the stream's own (header.*, chunk) are named as they are.
      if (error instanceof InvalidFieldError && !/^(header\.|chunk$)/.test(error.field)) throw error.under(`${field}.`);
      throw error;
    });
    const volume = await volumes.get(volumes.resolve({ vm: `uuid:${vm.uuid}`, name: "root", pool: "", vid: "" }));
    return { volume: volumeMessage(volume), bytesReceived: BigInt(received.bytesReceived), sha256: received.sha256 };
  };
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
    getVolume: async (request) => ({ volume: volumeMessage(await volumes.find(request.volume)) }),
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
      const revisions = await volumes.revisionsNamed(request.volume);
      const page = pageOf(revisions, (revision) => String(Number.MAX_SAFE_INTEGER - Number(revision.id)).padStart(16, "0"), request, pageTokens, { list: "revisions", ...refOf(request.volume) });
      return { revisions: page.items.map(revisionMessage), nextPageToken: page.nextPageToken };
    },
    snapshotVolume: async (request, ctx) => ({ revision: revisionMessage(await volumes.snapshot(volumes.resolve(request.volume), ctx, request.requestId)) }),
    revertVolume: async (request, ctx) => ({ volume: volumeMessage(await volumes.revert(volumes.resolve(request.volume), request.revision, ctx)) }),
    resizeVolume: async (request, ctx) => ({
      volume: volumeMessage(await volumes.resize(volumes.resolve(request.volume), byteCount(request.sizeBytes, "size_bytes"), request.allowShrink, ctx)),
    }),
    clearVolume: async (request, ctx) => ({ volume: volumeMessage(await volumes.clear(volumes.resolve(request.volume), ctx)) }),
    importVolume: async (requests, ctx) => {
      const stream = requests[Symbol.asyncIterator]();
      const first = await stream.next();
      if (first.done || first.value.kind.case !== "header") throw new InvalidFieldError("header", "an import starts with its header");
      const header = first.value.kind.value;
      if (header.target.case === "newTemplate") return importTemplate(header, header.target.value, chunksOf(stream), ctx);
      if (header.target.case !== "volume") throw new InvalidFieldError("header.target", "is required: the volume to import into");
      const format = volumeFormatName(header.format, "header.format") ?? "raw";
      const key = volumes.resolve(header.target.value, "header.volume");
      const result = await volumes.import(key, { sizeBytes: byteCount(header.sizeBytes, "header.size_bytes"), sha256: header.sha256, format }, chunksOf(stream), ctx);
      return { volume: volumeMessage(result.volume), bytesReceived: BigInt(result.bytesReceived), sha256: result.sha256 };
    },
    async *exportVolume(request, ctx) {
      const chunkBytes = request.chunkSize === 0 ? MAX_CHUNK_BYTES : request.chunkSize;
      if (chunkBytes > MAX_CHUNK_BYTES) throw new InvalidFieldError("chunk_size", `is at most ${MAX_CHUNK_BYTES} bytes (1 MiB)`);
      const format = volumeFormatName(request.format, "format") ?? "raw";
      const chunks = new ExportChunkMessages(chunkBytes);
      for await (const item of volumes.exportNamed(request.volume, request.revision, chunkBytes, ctx, format)) yield item.kind === "chunk" ? chunks.message(item.offset, item.data) : exportMessage(item);
    },
    cloneVolume: async (request, ctx) => {
      const source = volumes.resolve(request.source, "source");
      const target = volumes.resolve(request.target, "target");
      const spec = { kind: "clone-volume" as const, method: ctx.method, target: volumes.ownerOf(target), unit: "bytes" as const, requestId: request.requestId, request: { source, target } };
      return operationMessage(
        await operations.start(spec, ctx, {
          check: () => volumes.checkClone(source, target),
          work: (opCtx, progress) => volumes.clone(source, target, opCtx, progress),
          encode: (volume) => responseResult(CloneVolumeResponseSchema, { volume: volumeMessage(volume) }),
        }),
      );
    },
    attachVolume: async (request, ctx) => ({
      volume: volumeMessage(await attachments.attach({ vm: request.vm, volume: request.volume, name: request.name, rw: request.rw, order: request.order }, ctx)),
    }),
    detachVolume: async (request, ctx) => {
      await attachments.detach(request.vm, request.name, request.allowMissing, ctx);
      return {};
    },
    setVolumeProperty: async (request, ctx) => {
      const { property } = request;
      if (property.case === undefined) throw new InvalidFieldError("property", "is required: revisions_to_keep, rw or ephemeral");
      const change = property.case === "revisionsToKeep" ? { revisionsToKeep: property.value } : property.case === "rw" ? { rw: property.value } : { ephemeral: property.value };
      return { volume: volumeMessage(await volumes.setProperty(volumes.resolve(request.volume), change, ctx)) };
    },
    setVolumeLimit: async (request, ctx) => ({ volume: volumeMessage(await volumes.setLimit(volumes.resolve(request.volume), byteCount(request.limitBytes, "limit_bytes"), ctx)) }),
    listVolumeBitmaps: async (request) => {
      const key = volumes.resolve(request.volume);
      const page = pageOf(await volumes.bitmaps(key), (bitmap) => bitmap.name, request, pageTokens, { list: "bitmaps", ...key });
      return { bitmaps: page.items.map(bitmapMessage), nextPageToken: page.nextPageToken };
    },
    addVolumeBitmap: async (request, ctx) => {
      const change = { kind: "add" as const, name: request.name, granularityBytes: byteCount(request.granularityBytes, "granularity_bytes") };
      return { bitmap: optionalBitmap(await volumes.changeBitmap(volumes.resolve(request.volume), change, ctx)) };
    },
    clearVolumeBitmap: async (request, ctx) => ({ bitmap: optionalBitmap(await volumes.changeBitmap(volumes.resolve(request.volume), { kind: "clear", name: request.name }, ctx)) }),
    removeVolumeBitmap: async (request, ctx) => {
      await volumes.changeBitmap(volumes.resolve(request.volume), { kind: "remove", name: request.name, allowMissing: request.allowMissing }, ctx);
      return {};
    },
  };
}

function optionalBitmap(bitmap: VolumeBitmap | undefined) {
  return bitmap && bitmapMessage(bitmap);
}

/** The largest chunk either stream carries. */
const MAX_CHUNK_BYTES = 1024 * 1024;

/** The chunks after an import's header; another header, or a chunk over 1 MiB, is INVALID_ARGUMENT. */
async function* chunksOf(stream: AsyncIterator<ImportVolumeRequest>): AsyncGenerator<Uint8Array> {
  for (;;) {
    const next = await stream.next();
    if (next.done) return;
    if (next.value.kind.case !== "chunk") throw new InvalidFieldError("header", "an import has one header, first");
    const chunk = next.value.kind.value;
    if (chunk.length > MAX_CHUNK_BYTES) throw new InvalidFieldError("chunk", `is at most ${MAX_CHUNK_BYTES} bytes (1 MiB), not ${chunk.length}`);
    yield chunk;
  }
}

/** An export's message but for a chunk (see ExportChunkMessages). */
function exportMessage(item: Exclude<ExportItem, { kind: "chunk" }>): MessageInitShape<typeof ExportVolumeResponseSchema> {
  switch (item.kind) {
    case "header":
      return { kind: { case: "header", value: { volume: volumeMessage(item.volume), sizeBytes: BigInt(item.sizeBytes) } } };
    case "progress":
      return { kind: { case: "progress", value: { bytesDone: BigInt(item.doneBytes), bytesTotal: BigInt(item.totalBytes) } } };
    case "trailer":
      return { kind: { case: "trailer", value: { sha256: item.sha256, bytesSent: BigInt(item.bytesSent) } } };
  }
}

function refOf(ref: { vm: string; name: string; pool: string; vid: string } | undefined) {
  return { vm: ref?.vm ?? "", name: ref?.name ?? "", pool: ref?.pool ?? "", vid: ref?.vid ?? "" };
}
