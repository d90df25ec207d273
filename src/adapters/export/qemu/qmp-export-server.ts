/**
 * An ExportServer over one QEMU process's QMP socket: each port call is the QAPI command QEMU
 * documents for it (nbd-server-start, blockdev-add with block-export-add, block-export-del,
 * query-block-exports), and BLOCK_EXPORT_DELETED is what tells an export is gone.
 */
import { createHash } from "node:crypto";
import * as fsp from "node:fs/promises";
import type { ExportImage, ExportOptions, ExportServer, ExportSettings, ExportState, NbdAddress, NbdServerSettings, RemoveMode } from "../../../ports/block-exporter";
import { exportInUse, exportRefused } from "../../../ports/block-exporter-errors";
import { MonitorCommandError } from "../../hypervisor/qemu/qmp/monitor-connection";
import type { QmpClient } from "../../hypervisor/qemu/qmp/qmp-client";
import { nbdConnectionCount } from "./nbd-connections";

/** The ids of the NBD server's TLS objects in the process. */
const TLS_CREDS_ID = "steward-nbd-tls";
const TLS_AUTHZ_ID = "steward-nbd-authz";

/** QEMU's node names are at most 31 characters: an export's node is named by a hash of its id. */
export function nodeNameOf(exportId: string): string {
  return `export-${createHash("sha256").update(exportId).digest("hex").slice(0, 20)}`;
}

export class QmpExportServer implements ExportServer {
  private readonly deletedListeners: ((id: string) => void)[] = [];
  private nbdAddress: NbdAddress | undefined;

  constructor(
    private readonly qmp: QmpClient,
    private readonly pid: number,
  ) {
    qmp.onEvent((event) => {
      if (event.name !== "BLOCK_EXPORT_DELETED") return;
      const id = typeof event.data.id === "string" ? event.data.id : "";
      void this.closeImage(id)
        .then(() => this.tellDeleted(id))
        .catch(() => undefined);
    });
  }

  async startNbdServer(settings: NbdServerSettings, options: { adopted: boolean } = { adopted: false }): Promise<void> {
    if (!options.adopted) await this.stopNbdServer();
    if (settings.tls && !(options.adopted && (await this.hasObject(TLS_CREDS_ID)))) await this.addTlsObjects(settings.tls);
    const args: Record<string, unknown> = { addr: socketAddress(settings.address) };
    if (settings.maxConnections > 0) args["max-connections"] = settings.maxConnections;
    if (settings.tls) {
      args["tls-creds"] = TLS_CREDS_ID;
      if (settings.tls.allowedIdentities.length > 0) args["tls-authz"] = TLS_AUTHZ_ID;
    }
    try {
      await this.qmp.execute("nbd-server-start", args);
    } catch (error) {
      // An adopted process runs the server Steward started in it already.
      if (!(options.adopted && qemuSays(error, "NBD server already running"))) throw refused("start the NBD server", error);
    }
    this.nbdAddress = settings.address;
  }

  async stopNbdServer(): Promise<void> {
    try {
      await this.qmp.execute("nbd-server-stop");
    } catch (error) {
      if (!qemuSays(error, "NBD server not running")) throw refused("stop the NBD server", error);
    }
    this.nbdAddress = undefined;
    await this.deleteObject(TLS_AUTHZ_ID);
    await this.deleteObject(TLS_CREDS_ID);
  }

  async addExport(settings: ExportSettings, image: ExportImage): Promise<void> {
    const nodeName = nodeNameOf(settings.id);
    await this.prepareEndpoint(settings.options);
    try {
      await this.qmp.execute("blockdev-add", blockdevOf(nodeName, image, settings.writable));
    } catch (error) {
      throw refused(`open ${image.path}`, error);
    }
    try {
      if (settings.iothread !== "") await this.ensureIothread(settings.iothread);
      await this.qmp.execute("block-export-add", exportArgs(settings, nodeName));
    } catch (error) {
      await this.qmp.execute("blockdev-del", { "node-name": nodeName }).catch(() => undefined);
      throw refused(`export ${settings.id}`, error);
    }
  }

  async removeExport(id: string, mode: RemoveMode): Promise<void> {
    try {
      await this.qmp.execute("block-export-del", { id, mode });
    } catch (error) {
      if (qemuSays(error, "still in use")) throw exportInUse(id);
      // Gone already (deleted by a stopped server, say): it is as good as removed.
      if (qemuSays(error, "is not found")) {
        await this.closeImage(id);
        this.tellDeleted(id);
        return;
      }
      throw refused(`remove export ${id}`, error);
    }
  }

  async exports(): Promise<ExportState[]> {
    const listed = await this.qmp.execute<{ id: string; type: string; "shutting-down": boolean }[]>("query-block-exports");
    return listed.map((entry) => ({ id: entry.id, type: entry.type as ExportState["type"], shuttingDown: entry["shutting-down"] }));
  }

  async nbdConnections(): Promise<number> {
    return this.nbdAddress ? nbdConnectionCount(this.pid, this.nbdAddress) : 0;
  }

  onDeleted(listener: (id: string) => void): void {
    this.deletedListeners.push(listener);
  }

  private tellDeleted(id: string): void {
    for (const listener of this.deletedListeners) listener(id);
  }

  /** Closes a deleted export's image; nothing when it is closed already. */
  private async closeImage(id: string): Promise<void> {
    await this.qmp.execute("blockdev-del", { "node-name": nodeNameOf(id) }).catch(() => undefined);
  }

  /** What the export's type needs on the host before QEMU exports to it. */
  private async prepareEndpoint(options: ExportOptions): Promise<void> {
    // A FUSE export mounts over a regular file that must exist.
    if (options.type === "fuse") await (await fsp.open(options.mountpointPath, "a", 0o600)).close();
    // QEMU binds the socket itself, and refuses a name a stale socket holds.
    if (options.type === "vhost-user-blk") await fsp.rm(options.socketPath, { force: true });
  }

  private async ensureIothread(id: string): Promise<void> {
    try {
      await this.qmp.execute("object-add", { "qom-type": "iothread", id });
    } catch (error) {
      if (!qemuSays(error, "duplicate")) throw error;
    }
  }

  private async addTlsObjects(tls: NonNullable<NbdServerSettings["tls"]>): Promise<void> {
    // An adopted process may hold them from the server it ran: they are made anew.
    await this.deleteObject(TLS_AUTHZ_ID);
    await this.deleteObject(TLS_CREDS_ID);
    try {
      await this.qmp.execute("object-add", { "qom-type": "tls-creds-x509", id: TLS_CREDS_ID, dir: tls.credsDir, endpoint: "server", "verify-peer": true });
      if (tls.allowedIdentities.length > 0) {
        const rules = tls.allowedIdentities.map((identity) => ({ match: identity, policy: "allow", format: "exact" }));
        await this.qmp.execute("object-add", { "qom-type": "authz-list", id: TLS_AUTHZ_ID, policy: "deny", rules });
      }
    } catch (error) {
      throw refused("load the NBD server's TLS credentials", error);
    }
  }

  private async hasObject(id: string): Promise<boolean> {
    return this.qmp.execute("qom-list", { path: `/objects/${id}` }).then(() => true, () => false);
  }

  private async deleteObject(id: string): Promise<void> {
    await this.qmp.execute("object-del", { id }).catch(() => undefined);
  }
}

function socketAddress(address: NbdAddress): Record<string, unknown> {
  return address.kind === "unix" ? { type: "unix", data: { path: address.path } } : { type: "inet", data: { host: address.host, port: String(address.port) } };
}

/**
 * The image as a node: its format over its file, and a qcow2's backing chain from the paths
 * given (`backing: null` past the last), never from the names inside the images.
 */
export function blockdevOf(nodeName: string, image: ExportImage, writable: boolean): Record<string, unknown> {
  const file = (filename: string, readOnly: boolean) => ({ driver: "file", filename, "read-only": readOnly, ...(readOnly ? {} : { discard: "unmap" }) });
  if (image.format === "raw") return { driver: "raw", "node-name": nodeName, "read-only": !writable, file: file(image.path, !writable) };
  let backing: Record<string, unknown> | null = null;
  for (const below of [...image.backing].reverse()) backing = { driver: "qcow2", "read-only": true, file: file(below, true), backing };
  return { driver: "qcow2", "node-name": nodeName, "read-only": !writable, ...(writable ? { discard: "unmap" } : {}), file: file(image.path, !writable), backing };
}

/** block-export-add's arguments: the common ones, then those of the type. */
export function exportArgs(settings: ExportSettings, nodeName: string): Record<string, unknown> {
  const args: Record<string, unknown> = { type: settings.options.type, id: settings.id, "node-name": nodeName, writable: settings.writable, writethrough: settings.writethrough };
  if (settings.iothread !== "") {
    args.iothread = settings.iothread;
    args["fixed-iothread"] = settings.fixedIothread;
  }
  const options = settings.options;
  switch (options.type) {
    case "nbd":
      args.name = options.name;
      if (options.description !== "") args.description = options.description;
      if (options.bitmaps.length > 0) args.bitmaps = [...options.bitmaps];
      args["allocation-depth"] = options.allocationDepth;
      break;
    case "vhost-user-blk":
      args.addr = { type: "unix", path: options.socketPath };
      args["logical-block-size"] = options.logicalBlockSize;
      args["num-queues"] = options.numQueues;
      break;
    case "fuse":
      args.mountpoint = options.mountpointPath;
      args.growable = options.growable;
      args["allow-other"] = options.allowOther;
      break;
  }
  return args;
}

function qemuSays(error: unknown, words: string): boolean {
  return error instanceof MonitorCommandError && error.desc.includes(words);
}

/** What QEMU refused, as an error of the host; anything else (a lost connection) as it is. */
function refused(what: string, error: unknown): Error {
  return error instanceof MonitorCommandError ? exportRefused(what, error.desc) : (error as Error);
}
