/**
 * Block exports (BlockExportService): the host's NBD server and the volumes exported over it,
 * as vhost-user-blk devices or as FUSE files, served by Steward's qemu-storage-daemon. The
 * store keeps what the requests asked, so that a restart of Steward, or of the daemon, serves
 * the same exports again; QEMU tells when an export is gone (BLOCK_EXPORT_DELETED), and only
 * then is it forgotten.
 */
import type { BlockExporter, ExportOptions, ExportServer, ExportSettings, NbdCredentials, NbdServerSettings, RemoveMode } from "../../ports/block-exporter";
import type { Clock } from "../../ports/clock";
import type { Log } from "../../ports/log";
import type { Store } from "../../ports/store";
import { InvalidFieldError } from "../errors";
import type { EventLog } from "../events/event-log";
import type { BlockExportKind, BlockExportOptionsRecord, BlockExportRecord, NbdServerRecord } from "../model/block-export";
import { HOST_SUBJECT, type EventSubject } from "../model/event";
import type { CallContext } from "../shared/call-context";
import { KeyedQueue } from "../shared/keyed-queue";
import type { RequestLedger } from "../shared/request-ledger";
import { checkAddExport, checkNbdServer, EXPORT_ID, MAX_ID_LENGTH, type AddExportRequest, type NbdServerRequest, parseNbdAddress } from "./export-requests";
import { bitmapNotFound, exportEndpointTaken, exportExists, exportNotFound, exportTypeUnsupported, invalidExportId, nbdServerNotRunning, nbdServerRunning, tlsCredsNotFound, volumeNotExportable } from "./export-errors";
import { blockExportAdd, blockExportDeleted, blockExportShuttingDown, nbdServerStart, nbdServerStop } from "./export-events";
import type { ExportableVolume, ExportableVolumes } from "./exportable-volumes";

export type { AddExportRequest, NbdServerRequest } from "./export-requests";

/** An export as ListBlockExports shows it. */
export interface BlockExportView {
  record: BlockExportRecord;
  /** The paths of its endpoints on the host (a vhost-user-blk socket, a FUSE mount point). */
  endpointPath: string;
  connectionCount: number;
  /** The VM whose QEMU serves it; empty for the storage daemon. */
  servedBy: string;
}

export interface NbdServerView {
  record: NbdServerRecord;
  connectionCount: number;
}

const QUEUE_KEY = "exports";

export class BlockExports {
  private readonly queue = new KeyedQueue();
  /** The daemon restored and listened to; what the lists count connections of. */
  private driven: ExportServer | undefined;

  constructor(
    private readonly store: Store,
    private readonly exporter: BlockExporter | undefined,
    private readonly volumes: ExportableVolumes,
    private readonly credentials: NbdCredentials,
    private readonly events: EventLog,
    private readonly ledger: RequestLedger,
    private readonly clock: Clock,
    private readonly log: Log,
  ) {}

  /** The export types this host can serve (GetHostInfo). */
  types(): readonly BlockExportKind[] {
    return this.exporter?.types ?? [];
  }

  /**
   * Takes up what an earlier Steward left: the storage daemon with its exports when it still
   * runs, else a new one serving the same. Call once, before serving; nothing when there is
   * nothing to serve.
   */
  async adopt(): Promise<void> {
    if (this.store.blockExports.nbdServer() === undefined && this.store.blockExports.list().length === 0) return;
    try {
      await this.queue.run(QUEUE_KEY, { what: "take up the block exports" }, () => this.daemon());
    } catch (error) {
      // Steward serves its VMs all the same; the next call on the exports tries again, and says why it cannot.
      this.log.error({ err: error }, "the block exports could not be taken up");
    }
  }

  async startNbdServer(request: NbdServerRequest, ctx: CallContext): Promise<NbdServerView> {
    this.ledger.checkKey(request.requestId);
    checkNbdServer(request);
    return this.queue.run(QUEUE_KEY, { caller: ctx, what: "start the NBD server" }, async () => {
      const asked = { address: request.address, tls: request.tls, maxConnections: request.maxConnections, tlsCreds: request.tlsCreds, allowedIdentities: [...request.allowedIdentities] };
      const running = this.store.blockExports.nbdServer();
      if (this.ledger.earlier(request.requestId, "StartNbdServer", asked) !== undefined && running !== undefined) return this.serverView(running);
      if (running !== undefined) throw nbdServerRunning(running.address);
      const exporter = this.available();
      const record: NbdServerRecord = { ...asked, startedAt: this.clock.now() };
      const settings = await this.serverSettings(record, exporter);
      const server = await this.daemon();
      await server.startNbdServer(settings);
      this.store.transaction(() => {
        this.store.blockExports.setNbdServer(record);
        this.events.append(nbdServerStart(record.address, record.tls));
        this.ledger.remember(request.requestId, "StartNbdServer", asked, record.address);
      });
      return this.serverView(record);
    });
  }

  /** Stops the NBD server, which ends its exports (each tells block-export-deleted as QEMU deletes it); false when none ran. */
  async stopNbdServer(ctx: CallContext): Promise<boolean> {
    return this.queue.run(QUEUE_KEY, { caller: ctx, what: "stop the NBD server" }, async () => {
      const running = this.store.blockExports.nbdServer();
      if (running === undefined) return false;
      const server = await this.daemon();
      const nbdExports = this.store.blockExports.list().filter((record) => record.options.type === "nbd");
      await server.stopNbdServer();
      // QEMU tells each deleted as it goes; until then they are shutting down.
      this.store.transaction(() => {
        for (const record of nbdExports) if (this.store.blockExports.get(record.id)) this.store.blockExports.markShuttingDown(record.id);
        this.store.blockExports.setNbdServer(undefined);
        this.events.append(nbdServerStop(running.address));
      });
      return true;
    });
  }

  async add(request: AddExportRequest, ctx: CallContext): Promise<BlockExportView> {
    this.ledger.checkKey(request.requestId);
    const options = checkAddExport(request);
    return this.queue.run(QUEUE_KEY, { caller: ctx, what: `export ${request.id}` }, async () => {
      const asked = { ...request, requestId: undefined };
      if (this.ledger.earlier(request.requestId, "AddBlockExport", asked) !== undefined) {
        const added = this.store.blockExports.get(request.id);
        if (added !== undefined) return this.view(added);
      }
      const exporter = this.available();
      if (!exporter.types.includes(options.type)) throw exportTypeUnsupported(options.type, exporter.types);
      if (this.store.blockExports.get(request.id) !== undefined) throw exportExists(request.id);
      if (options.type === "nbd" && this.store.blockExports.nbdServer() === undefined) throw nbdServerNotRunning(request.id);
      this.checkEndpointFree(options);
      const volume = await this.volumes.exportable(request.volume, "volume");
      this.checkVolumeFree(volume, request.writable);
      if (options.type === "nbd" && options.bitmaps.length > 0) {
        const held = await this.volumes.bitmapsOf(volume.pool, volume.vid);
        for (const bitmap of options.bitmaps) if (!held.includes(bitmap)) throw bitmapNotFound(volume.label, bitmap);
      }
      const record: BlockExportRecord = {
        id: request.id,
        pool: volume.pool,
        vid: volume.vid,
        writable: request.writable,
        writethrough: request.writethrough,
        iothread: request.iothread,
        fixedIothread: request.fixedIothread,
        options,
        shuttingDown: false,
        createdAt: this.clock.now(),
      };
      const settings = this.settingsOf(record, exporter);
      const server = await this.daemon();
      this.reserve(record, volume);
      try {
        await server.addExport(settings, volume.image);
      } catch (error) {
        this.store.transaction(() => this.store.blockExports.remove(record.id));
        throw error;
      }
      this.store.transaction(() => {
        this.events.append(blockExportAdd(this.subjectOf(record), record));
        this.ledger.remember(request.requestId, "AddBlockExport", asked, record.id);
      });
      return this.view(record);
    });
  }

  /**
   * Begins removing an export (block-export-del); it is shutting down until QEMU tells it is
   * gone. Undefined when it is gone already (or there was none, with allowMissing).
   */
  async remove(id: string, mode: RemoveMode, allowMissing: boolean, ctx: CallContext): Promise<BlockExportView | undefined> {
    if (!EXPORT_ID.test(id) || id.length > MAX_ID_LENGTH) throw invalidExportId("id");
    return this.queue.run(QUEUE_KEY, { caller: ctx, what: `remove export ${id}` }, async () => {
      const record = this.store.blockExports.get(id);
      if (record === undefined) {
        if (allowMissing) return undefined;
        throw exportNotFound(id);
      }
      if (record.shuttingDown) return this.view(record);
      const server = await this.daemon();
      await server.removeExport(id, mode);
      const now = this.store.blockExports.get(id);
      if (now === undefined) return undefined;
      this.store.transaction(() => {
        this.store.blockExports.markShuttingDown(id);
        this.events.append(blockExportShuttingDown(this.subjectOf(now), now, mode));
      });
      return this.view({ ...now, shuttingDown: true });
    });
  }

  async list(): Promise<{ exports: BlockExportView[]; server: NbdServerView | undefined }> {
    const records = this.store.blockExports.list();
    const serverRecord = this.store.blockExports.nbdServer();
    const connections = records.length > 0 || serverRecord ? await this.nbdConnections() : 0;
    return {
      exports: records.map((record) => this.viewWith(record, record.options.type === "nbd" ? connections : 0)),
      server: serverRecord && { record: serverRecord, connectionCount: connections },
    };
  }

  private available(): BlockExporter {
    if (this.exporter === undefined) throw exportTypeUnsupported("anything", []);
    return this.exporter;
  }

  /**
   * The storage daemon; one this Steward has not driven yet is first given the server and the
   * exports the store has (a new one holds none, an adopted one what it kept). Called within the
   * queue only, so that no two calls restore one daemon.
   */
  private async daemon(): Promise<ExportServer> {
    const exporter = this.available();
    const { server, fresh } = await exporter.daemon();
    if (server !== this.driven) {
      server.onDeleted((id) => this.deleted(id));
      await this.restore(server, exporter, fresh ? [] : await server.exports());
      this.driven = server;
    }
    return server;
  }

  /**
   * Makes the daemon serve what the store has: the NBD server, then each export it lacks
   * (`present` are those it has). Exports shutting down are gone once it lacks them; one that
   * cannot be served again is logged and forgotten, told as deleted.
   */
  private async restore(server: ExportServer, exporter: BlockExporter, present: readonly { id: string }[]): Promise<void> {
    const have = new Set(present.map((state) => state.id));
    const serverRecord = this.store.blockExports.nbdServer();
    if (serverRecord) await server.startNbdServer(await this.serverSettings(serverRecord, exporter), { adopted: true });
    for (const record of this.store.blockExports.list()) {
      if (have.has(record.id)) continue;
      if (record.shuttingDown || (record.options.type === "nbd" && serverRecord === undefined)) {
        this.deleted(record.id);
        continue;
      }
      try {
        const volume = await this.volumes.current(record.pool, record.vid);
        await server.addExport(this.settingsOf(record, exporter), volume.image);
        this.log.info({ export: record.id, pool: record.pool, vid: record.vid }, "a block export is served again");
      } catch (error) {
        this.log.error({ export: record.id, pool: record.pool, vid: record.vid, err: error }, "a block export could not be served again: it is forgotten");
        this.deleted(record.id);
      }
    }
  }

  /** QEMU deleted an export: it is forgotten, and block-export-deleted tells of it. */
  private deleted(id: string): void {
    this.store.transaction(() => {
      const record = this.store.blockExports.get(id);
      if (record === undefined) return;
      this.store.blockExports.remove(id);
      this.events.append(blockExportDeleted(this.subjectOf(record), record));
    });
  }

  /** The VM owning the export's volume, or the host for a pool's own volume. */
  private subjectOf(record: BlockExportRecord): EventSubject {
    const qid = this.store.volumes.get(record.pool, record.vid)?.vmQid;
    const vm = qid === undefined ? undefined : this.store.vms.byQid(qid);
    return vm ? { name: vm.name, uuid: vm.uuid } : HOST_SUBJECT;
  }

  private async serverSettings(record: NbdServerRecord, exporter: BlockExporter): Promise<NbdServerSettings> {
    const address = parseNbdAddress(record.address, (name) => exporter.endpointPath("nbd-socket", name));
    if (address.kind === "unix") checkSocketPath(address.path, "address");
    if (!record.tls) return { address, maxConnections: record.maxConnections };
    const credsDir = await this.credentials.folder(record.tlsCreds);
    if (credsDir === undefined) throw tlsCredsNotFound(record.tlsCreds, this.credentials.expected(record.tlsCreds));
    return { address, maxConnections: record.maxConnections, tls: { credsDir, allowedIdentities: record.allowedIdentities } };
  }

  private settingsOf(record: BlockExportRecord, exporter: BlockExporter): ExportSettings {
    if (record.options.type === "vhost-user-blk") checkSocketPath(exporter.endpointPath("vhost-user-blk-socket", record.options.socket), "vhost_user_blk.socket");
    return { id: record.id, writable: record.writable, writethrough: record.writethrough, iothread: record.iothread, fixedIothread: record.fixedIothread, options: optionsOf(record.options, exporter) };
  }

  /**
   * Stores the export before QEMU opens the volume: from then on the storage area refuses to
   * delete or change the volume, or start its VM (each checks within its own transaction, so
   * that either it or the export goes first). A volume being changed meanwhile is refused here.
   */
  private reserve(record: BlockExportRecord, volume: ExportableVolume): void {
    this.store.transaction(() => {
      if (!this.volumes.ready(record.pool, record.vid)) throw volumeNotExportable(volume.label, "it is being changed or deleted");
      this.store.blockExports.insert(record);
    });
  }

  /** No other export has the NBD name, the socket or the mount point asked. */
  private checkEndpointFree(options: BlockExportOptionsRecord): void {
    for (const other of this.store.blockExports.list()) {
      const theirs = other.options;
      if (options.type === "nbd" && theirs.type === "nbd" && theirs.name === options.name) throw exportEndpointTaken("nbd.name", `the NBD name ${options.name}`, other.id);
      if (options.type === "vhost-user-blk" && theirs.type === "vhost-user-blk" && theirs.socket === options.socket) throw exportEndpointTaken("vhost_user_blk.socket", `the socket ${options.socket}`, other.id);
      if (options.type === "fuse" && theirs.type === "fuse" && theirs.mountpoint === options.mountpoint) throw exportEndpointTaken("fuse.mountpoint", `the mount point ${options.mountpoint}`, other.id);
    }
  }

  /**
   * A writable export is the volume's one writer: refused while a running VM writes it, or another
   * export serves it; and no export is added beside a writable one.
   */
  private checkVolumeFree(volume: ExportableVolume, writable: boolean): void {
    const exports = this.store.blockExports.ofVolume(volume.pool, volume.vid);
    const writableExport = exports.find((other) => other.writable);
    if (writableExport) throw this.volumes.inUse(volume, `export ${writableExport.id} serves it writable, as its only export`, []);
    const writers = volume.users.filter((user) => user.writes).map((user) => user.vm);
    if (writable && writers.length > 0) throw this.volumes.inUse(volume, `${writers.join(", ")} runs and writes it: export it read-only`, writers);
    if (writable && exports.length > 0) throw this.volumes.inUse(volume, `export ${exports[0].id} serves it: a writable export must be its only one`, []);
    if (volume.users.length > 0) throw volumeNotExportable(volume.label, `${volume.users.map((user) => user.vm).join(", ")} runs with it as a disk, and this Steward exports only volumes no running VM holds`);
  }

  /** The clients of the daemon's NBD server; a list does not wait for the queue, nor start a daemon. */
  private async nbdConnections(): Promise<number> {
    if (this.driven === undefined) return 0;
    try {
      return await this.driven.nbdConnections();
    } catch (error) {
      this.log.warn({ err: error }, "the NBD server's connections could not be counted");
      return 0;
    }
  }

  private async view(record: BlockExportRecord): Promise<BlockExportView> {
    return this.viewWith(record, record.options.type === "nbd" ? await this.nbdConnections() : 0);
  }

  private viewWith(record: BlockExportRecord, connectionCount: number): BlockExportView {
    return { record, endpointPath: this.exporter ? endpointPathOf(record.options, this.exporter) : "", connectionCount, servedBy: "" };
  }

  private async serverView(record: NbdServerRecord): Promise<NbdServerView> {
    return { record, connectionCount: await this.nbdConnections() };
  }
}

/** A unix socket's path must fit in sockaddr_un's 108 bytes, its ending NUL included. */
const MAX_SOCKET_PATH_BYTES = 107;

function checkSocketPath(socketPath: string, field: string): void {
  const bytes = new TextEncoder().encode(socketPath).length;
  if (bytes > MAX_SOCKET_PATH_BYTES) throw new InvalidFieldError(field, `makes the socket ${socketPath}, ${bytes} bytes: a unix socket's path has at most ${MAX_SOCKET_PATH_BYTES}; give a shorter name`);
}

/** The options as QEMU takes them: names turned into paths in Steward's exports folder. */
function optionsOf(options: BlockExportOptionsRecord, exporter: BlockExporter): ExportOptions {
  switch (options.type) {
    case "nbd":
      return { ...options };
    case "vhost-user-blk":
      return { type: "vhost-user-blk", socketPath: exporter.endpointPath("vhost-user-blk-socket", options.socket), logicalBlockSize: options.logicalBlockSize, numQueues: options.numQueues };
    case "fuse":
      return { type: "fuse", mountpointPath: exporter.endpointPath("fuse-mountpoint", options.mountpoint), growable: options.growable, allowOther: options.allowOther };
  }
}

/** The path on the host of what the export serves through (its socket, its mount point); empty for NBD. */
function endpointPathOf(options: BlockExportOptionsRecord, exporter: BlockExporter): string {
  const given = optionsOf(options, exporter);
  return given.type === "vhost-user-blk" ? given.socketPath : given.type === "fuse" ? given.mountpointPath : "";
}
