import { create } from "@bufbuild/protobuf";
import {
  BlockExportSchema,
  BlockExportType,
  FuseAllowOther,
  FuseExportOptionsSchema,
  NbdExportOptionsSchema,
  NbdServerSchema,
  VhostUserBlkExportOptionsSchema,
  RemoveMode,
  type BlockExport,
  type NbdServer,
} from "../../../gen/steward/v1/block_export_pb";
import type { AddBlockExportRequest, BlockExportService } from "../../../gen/steward/v1/block_export_service_pb";
import { VolumeRefSchema } from "../../../gen/steward/v1/volume_pb";
import type { AddExportRequest, BlockExports, BlockExportView, NbdServerView } from "../../core/exports/block-exports";
import { InvalidFieldError } from "../../core/errors";
import type { BlockExportKind, BlockExportOptionsRecord } from "../../core/model/block-export";
import { pageOf, type PageTokens } from "../../core/shared/page-token";
import type { ServiceImpl } from "../../server/service-impl";

export interface BlockExportParts {
  exports: BlockExports;
  pageTokens: PageTokens;
}

/** The proto's BlockExportType of each type (GetHostInfo's block_export_types too). */
export const EXPORT_TYPES: Record<BlockExportKind, BlockExportType> = {
  nbd: BlockExportType.NBD,
  "vhost-user-blk": BlockExportType.VHOST_USER_BLK,
  fuse: BlockExportType.FUSE,
};

const ALLOW_OTHER: Record<"off" | "on" | "auto", FuseAllowOther> = { off: FuseAllowOther.OFF, on: FuseAllowOther.ON, auto: FuseAllowOther.AUTO };

/** BlockExportService: QEMU's nbd-server-* and block-export-*, driven in Steward's storage daemon. */
export function blockExportApi({ exports, pageTokens }: BlockExportParts): ServiceImpl<typeof BlockExportService> {
  return {
    startNbdServer: async (request, ctx) => ({ server: serverMessage(await exports.startNbdServer(request, ctx)) }),
    stopNbdServer: async (_request, ctx) => ({ stopped: await exports.stopNbdServer(ctx) }),
    addBlockExport: async (request, ctx) => ({ export: exportMessage(await exports.add(addRequest(request), ctx)) }),
    removeBlockExport: async (request, ctx) => {
      const removed = await exports.remove(request.id, removeMode(request.mode), request.allowMissing, ctx);
      return { export: removed && exportMessage(removed) };
    },
    listBlockExports: async (request) => {
      const { exports: all, server } = await exports.list();
      const page = pageOf(all, (view) => view.record.id, request, pageTokens, { list: "block-exports" });
      return { exports: page.items.map(exportMessage), server: server && serverMessage(server), nextPageToken: page.nextPageToken };
    },
  };
}

function addRequest(request: AddBlockExportRequest): AddExportRequest {
  return {
    id: request.id,
    volume: request.volume && { vm: request.volume.vm, name: request.volume.name, pool: request.volume.pool, vid: request.volume.vid },
    writable: request.writable,
    writethrough: request.writethrough,
    type: exportType(request.type),
    options: givenOptions(request.options),
    iothread: request.iothread,
    fixedIothread: request.fixedIothread,
    requestId: request.requestId,
  };
}

function exportType(type: BlockExportType): BlockExportKind | undefined {
  switch (type) {
    case BlockExportType.UNSPECIFIED:
      return undefined;
    case BlockExportType.NBD:
      return "nbd";
    case BlockExportType.VHOST_USER_BLK:
      return "vhost-user-blk";
    case BlockExportType.FUSE:
      return "fuse";
    default:
      throw new InvalidFieldError("type", `${String(type)} is no BlockExportType: NBD, VHOST_USER_BLK or FUSE`);
  }
}

function givenOptions(options: AddBlockExportRequest["options"]): BlockExportOptionsRecord | undefined {
  switch (options.case) {
    case undefined:
      return undefined;
    case "nbd":
      return { type: "nbd", name: options.value.name, description: options.value.description, bitmaps: options.value.bitmaps, allocationDepth: options.value.allocationDepth };
    case "vhostUserBlk":
      if (options.value.socketPath !== "") throw new InvalidFieldError("vhost_user_blk.socket_path", "is output only: name the socket with socket");
      return { type: "vhost-user-blk", socket: options.value.socket, logicalBlockSize: options.value.logicalBlockSize, numQueues: options.value.numQueues };
    case "fuse":
      if (options.value.mountpointPath !== "") throw new InvalidFieldError("fuse.mountpoint_path", "is output only: name the mount point with mountpoint");
      return { type: "fuse", mountpoint: options.value.mountpoint, growable: options.value.growable, allowOther: allowOther(options.value.allowOther) };
  }
}

function allowOther(value: FuseAllowOther): "off" | "on" | "auto" {
  switch (value) {
    case FuseAllowOther.UNSPECIFIED:
    case FuseAllowOther.AUTO:
      return "auto";
    case FuseAllowOther.OFF:
      return "off";
    case FuseAllowOther.ON:
      return "on";
    default:
      throw new InvalidFieldError("fuse.allow_other", `${String(value)} is no FuseAllowOther: OFF, ON or AUTO`);
  }
}

function removeMode(mode: RemoveMode): "safe" | "hard" {
  switch (mode) {
    case RemoveMode.UNSPECIFIED:
    case RemoveMode.SAFE:
      return "safe";
    case RemoveMode.HARD:
      return "hard";
    default:
      throw new InvalidFieldError("mode", `${String(mode)} is no RemoveMode: SAFE or HARD`);
  }
}

function serverMessage(view: NbdServerView): NbdServer {
  const { record } = view;
  return create(NbdServerSchema, {
    address: record.address,
    tls: record.tls,
    maxConnections: record.maxConnections,
    connectionCount: view.connectionCount,
    tlsCreds: record.tlsCreds,
    allowedIdentities: [...record.allowedIdentities],
  });
}

export function exportMessage(view: BlockExportView): BlockExport {
  const { record } = view;
  const message = create(BlockExportSchema, {
    id: record.id,
    type: EXPORT_TYPES[record.options.type],
    volume: create(VolumeRefSchema, { pool: record.pool, vid: record.vid }),
    writable: record.writable,
    writethrough: record.writethrough,
    shuttingDown: record.shuttingDown,
    connectionCount: view.connectionCount,
    iothread: record.iothread,
    fixedIothread: record.fixedIothread,
    servedBy: view.servedBy,
  });
  const options = record.options;
  if (options.type === "nbd") {
    message.options = { case: "nbd", value: create(NbdExportOptionsSchema, { name: options.name, description: options.description, bitmaps: [...options.bitmaps], allocationDepth: options.allocationDepth }) };
  } else if (options.type === "vhost-user-blk") {
    const value = create(VhostUserBlkExportOptionsSchema, { socket: options.socket, logicalBlockSize: options.logicalBlockSize, numQueues: options.numQueues, socketPath: view.endpointPath });
    message.options = { case: "vhostUserBlk", value };
  } else {
    const value = create(FuseExportOptionsSchema, { mountpoint: options.mountpoint, growable: options.growable, allowOther: ALLOW_OTHER[options.allowOther], mountpointPath: view.endpointPath });
    message.options = { case: "fuse", value };
  }
  return message;
}
