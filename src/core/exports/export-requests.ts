/**
 * The requests of BlockExportService as the core takes them, and their checks: every field is
 * checked before anything reaches QEMU, and a refusal names the field.
 */
import { InvalidFieldError } from "../errors";
import type { BlockExportKind, BlockExportOptionsRecord } from "../model/block-export";
import type { NbdAddress } from "../../ports/block-exporter";
import { exportOptionsMismatch, invalidExportId, invalidNbdAddress, tlsRequired } from "./export-errors";
import type { VolumeNaming } from "./exportable-volumes";

export interface NbdServerRequest {
  address: string;
  tls: boolean;
  maxConnections: number;
  tlsCreds: string;
  allowedIdentities: readonly string[];
  requestId: string;
}

export interface AddExportRequest {
  id: string;
  volume: VolumeNaming | undefined;
  writable: boolean;
  writethrough: boolean;
  /** The type asked; undefined when unset (NBD). */
  type: BlockExportKind | undefined;
  /** The options the request gave, of the type they belong to (the oneof's case), before their defaults. */
  options: BlockExportOptionsRecord | undefined;
  iothread: string;
  fixedIothread: boolean;
  requestId: string;
}

/** Export ids, iothread ids: what QEMU takes as an id (id_wellformed). */
export const EXPORT_ID = /^[A-Za-z][A-Za-z0-9_.-]*$/;
export const MAX_ID_LENGTH = 64;
/** A socket's or a mount point's name in Steward's exports folder: one file's name. */
const ENDPOINT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const MAX_ENDPOINT_NAME = 64;
/** NBD's longest string (NBD_MAX_STRING_SIZE), for an export's name and description. */
const MAX_NBD_STRING_BYTES = 4096;
const HOST_NAME = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6 = /^[0-9A-Fa-f:.]+$/;
/** A distinguished name, as QEMU matches a client certificate's: one line of printable characters. */
const MAX_IDENTITY = 1024;

/** An NBD address as a request gives it: host:port, [v6]:port or unix:<name>. */
export type ParsedAddress = { kind: "inet"; host: string; port: number; loopback: boolean } | { kind: "unix"; name: string };

export function parseAddress(address: string): ParsedAddress {
  if (address === "") throw invalidNbdAddress("is required: host:port, or unix:<name>");
  if (address.startsWith("unix:")) {
    const name = address.slice("unix:".length);
    if (!isEndpointName(name)) throw invalidNbdAddress(`the socket's name after unix: ${NAME_RULE}`);
    return { kind: "unix", name };
  }
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address);
  if (!match) throw invalidNbdAddress(`${JSON.stringify(address)} is not host:port, [IPv6]:port or unix:<name>`);
  const host = match[1] ?? match[2];
  const port = Number(match[3]);
  if (port < 1 || port > 65535) throw invalidNbdAddress(`port ${match[3]} is not from 1 to 65535`);
  if (match[1] !== undefined ? !(IPV6.test(host) && host.includes(":")) : !(IPV4.test(host) || (HOST_NAME.test(host) && !/^[\d.]+$/.test(host)))) throw invalidNbdAddress(`${JSON.stringify(host)} is not an IP address or a host name`);
  return { kind: "inet", host, port, loopback: isLoopback(host) };
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

/** The address as QEMU takes it, a unix socket's name turned into its path by `socketPath`. */
export function parseNbdAddress(address: string, socketPath: (name: string) => string): NbdAddress {
  const parsed = parseAddress(address);
  return parsed.kind === "unix" ? { kind: "unix", path: socketPath(parsed.name) } : { kind: "inet", host: parsed.host, port: parsed.port };
}

export function checkNbdServer(request: NbdServerRequest): ParsedAddress {
  const address = parseAddress(request.address);
  if (address.kind === "inet" && !address.loopback && !request.tls) throw tlsRequired(request.address);
  if (!request.tls && request.tlsCreds !== "") throw new InvalidFieldError("tls_creds", "is only for a server with tls");
  if (!request.tls && request.allowedIdentities.length > 0) throw new InvalidFieldError("allowed_identities", "are only for a server with tls");
  if (request.tlsCreds !== "") checkEndpointName(request.tlsCreds, "tls_creds", "a credentials set's name");
  request.allowedIdentities.forEach((identity, at) => {
    if (identity.length === 0 || identity.length > MAX_IDENTITY || [...identity].some((char) => char < " " || char === "\x7f")) throw new InvalidFieldError(`allowed_identities[${at}]`, "must be a distinguished name such as O=Example,CN=backup, on one line, at most 1024 characters");
  });
  return address;
}

/** Checks a request to add an export; returns its type's options, defaults filled in. */
export function checkAddExport(request: AddExportRequest): BlockExportOptionsRecord {
  if (!EXPORT_ID.test(request.id) || request.id.length > MAX_ID_LENGTH) throw invalidExportId("id");
  if (request.volume === undefined) throw new InvalidFieldError("volume", "is required");
  if (request.iothread !== "" && (!EXPORT_ID.test(request.iothread) || request.iothread.length > MAX_ID_LENGTH)) {
    throw new InvalidFieldError("iothread", "must be a letter, then letters, digits, '_', '.' or '-', at most 64 characters");
  }
  if (request.fixedIothread && request.iothread === "") throw new InvalidFieldError("fixed_iothread", "is only with iothread");
  const type = request.type ?? "nbd";
  const given = request.options;
  if (given !== undefined && given.type !== type) throw exportOptionsMismatch(fieldOf(given.type), type);
  switch (type) {
    case "nbd":
      return nbdOptions(request.id, given?.type === "nbd" ? given : undefined);
    case "vhost-user-blk":
      return vhostOptions(given?.type === "vhost-user-blk" ? given : undefined);
    case "fuse":
      return fuseOptions(given?.type === "fuse" ? given : undefined);
  }
}

function nbdOptions(id: string, given: Extract<BlockExportOptionsRecord, { type: "nbd" }> | undefined): BlockExportOptionsRecord {
  const name = given?.name || id;
  if (utf8Bytes(name) > MAX_NBD_STRING_BYTES) throw new InvalidFieldError("nbd.name", `is longer than NBD's ${MAX_NBD_STRING_BYTES} bytes`);
  const description = given?.description ?? "";
  if (utf8Bytes(description) > MAX_NBD_STRING_BYTES) throw new InvalidFieldError("nbd.description", `is longer than NBD's ${MAX_NBD_STRING_BYTES} bytes`);
  const bitmaps = given?.bitmaps ?? [];
  bitmaps.forEach((bitmap, at) => {
    if (!EXPORT_ID.test(bitmap) || bitmap.length > MAX_ID_LENGTH) throw new InvalidFieldError(`nbd.bitmaps[${at}]`, "must be a bitmap's name: a letter, then letters, digits, '_', '.' or '-', at most 64 characters");
  });
  if (new Set(bitmaps).size !== bitmaps.length) throw new InvalidFieldError("nbd.bitmaps", "names a bitmap twice");
  return { type: "nbd", name, description, bitmaps: [...bitmaps], allocationDepth: given?.allocationDepth ?? false };
}

function vhostOptions(given: Extract<BlockExportOptionsRecord, { type: "vhost-user-blk" }> | undefined): BlockExportOptionsRecord {
  if (given === undefined || given.socket === "") throw new InvalidFieldError("vhost_user_blk.socket", "is required: the socket's name in Steward's exports folder");
  checkEndpointName(given.socket, "vhost_user_blk.socket", "the socket's name");
  const logicalBlockSize = given.logicalBlockSize || 512;
  if (logicalBlockSize < 512 || logicalBlockSize > 32768 || (logicalBlockSize & (logicalBlockSize - 1)) !== 0) {
    throw new InvalidFieldError("vhost_user_blk.logical_block_size", `${logicalBlockSize} is not a power of two from 512 to 32768`);
  }
  const numQueues = given.numQueues || 1;
  if (numQueues > 1024) throw new InvalidFieldError("vhost_user_blk.num_queues", `${numQueues} is more than 1024`);
  return { type: "vhost-user-blk", socket: given.socket, logicalBlockSize, numQueues };
}

function fuseOptions(given: Extract<BlockExportOptionsRecord, { type: "fuse" }> | undefined): BlockExportOptionsRecord {
  if (given === undefined || given.mountpoint === "") throw new InvalidFieldError("fuse.mountpoint", "is required: the mount point's name in Steward's exports folder");
  checkEndpointName(given.mountpoint, "fuse.mountpoint", "the mount point's name");
  return { type: "fuse", mountpoint: given.mountpoint, growable: given.growable, allowOther: given.allowOther };
}

const NAME_RULE = `must be a letter or digit, then letters, digits, '_', '.' or '-', at most ${MAX_ENDPOINT_NAME} characters: it is a file in Steward's own folder`;

/** A name that is one file's in Steward's folder: no '/', and no leading '.' (no '..', none of Steward's own dot-folders). */
function isEndpointName(name: string): boolean {
  return ENDPOINT_NAME.test(name) && name.length <= MAX_ENDPOINT_NAME;
}

function checkEndpointName(name: string, field: string, what: string): void {
  if (!isEndpointName(name)) throw new InvalidFieldError(field, `${what} ${NAME_RULE}`);
}

function utf8Bytes(text: string): number {
  return new TextEncoder().encode(text).length;
}

function fieldOf(type: BlockExportKind): string {
  return type === "vhost-user-blk" ? "vhost_user_blk" : type;
}
