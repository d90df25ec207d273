import { BlockExports } from "../../../../src/core/exports/block-exports";
import type { ExportableVolume, ExportableVolumes } from "../../../../src/core/exports/exportable-volumes";
import { DomainError, failedPrecondition } from "../../../../src/core/errors";
import { EventLog } from "../../../../src/core/events/event-log";
import { RequestLedger } from "../../../../src/core/shared/request-ledger";
import type { BlockExporter, ExportImage, ExportServer, ExportSettings, ExportState, NbdServerSettings, RemoveMode } from "../../../../src/ports/block-exporter";
import { exportInUse } from "../../../../src/ports/block-exporter-errors";
import { systemClock } from "../../../../src/ports/clock";
import { testContext } from "../../../fixtures/call-context";
import { LogCapture } from "../../../fixtures/log-capture";
import { storeForEach } from "../../../fixtures/temp-store";

/** An export server that keeps its exports in memory, as QEMU would, and deletes them as QEMU does: after the removal returns. */
class FakeServer implements ExportServer {
  readonly nbd: NbdServerSettings[] = [];
  readonly added = new Map<string, { settings: ExportSettings; image: ExportImage }>();
  readonly clients = new Map<string, number>();
  private readonly listeners: ((id: string) => void)[] = [];

  async startNbdServer(settings: NbdServerSettings): Promise<void> {
    this.nbd.push(settings);
  }

  async stopNbdServer(): Promise<void> {
    this.nbd.length = 0;
    for (const [id, { settings }] of [...this.added]) if (settings.options.type === "nbd") this.deleteLater(id);
  }

  async addExport(settings: ExportSettings, image: ExportImage): Promise<void> {
    this.added.set(settings.id, { settings, image });
  }

  async removeExport(id: string, mode: RemoveMode): Promise<void> {
    if (mode === "safe" && (this.clients.get(id) ?? 0) > 0) throw exportInUse(id);
    this.deleteLater(id);
  }

  async exports(): Promise<ExportState[]> {
    return [...this.added.values()].map(({ settings }) => ({ id: settings.id, type: settings.options.type, shuttingDown: false }));
  }

  async nbdConnections(): Promise<number> {
    return [...this.clients.values()].reduce((a, b) => a + b, 0);
  }

  onDeleted(listener: (id: string) => void): void {
    this.listeners.push(listener);
  }

  /** BLOCK_EXPORT_DELETED comes once the clients are gone: after the command's return. */
  private deleteLater(id: string): void {
    setImmediate(() => {
      this.added.delete(id);
      this.clients.delete(id);
      for (const listener of this.listeners) listener(id);
    });
  }
}

class FakeExporter implements BlockExporter {
  readonly types = ["nbd", "vhost-user-blk"] as const;
  server = new FakeServer();
  fresh = true;
  /** Where the exports folder is: a deep one makes long socket paths. */
  root = "/exports";

  endpointPath(kind: string, name: string): string {
    return `${this.root}/${kind}/${name}`;
  }

  async daemon(): Promise<{ server: ExportServer; fresh: boolean }> {
    const fresh = this.fresh;
    this.fresh = false;
    return { server: this.server, fresh };
  }

  async release(): Promise<void> {}

  /** The daemon died: the next call gets a new one, holding nothing. */
  restart(): void {
    this.server = new FakeServer();
    this.fresh = true;
  }
}

const image: ExportImage = { path: "/pool/v.raw", format: "raw", backing: [] };

describe("BlockExports", () => {
  const opened = storeForEach();
  let exporter: FakeExporter;
  let users: Map<string, { vm: string; writes: boolean }[]>;
  let exports: BlockExports;
  const ctx = testContext();
  const nbdServer = { address: "unix:nbd.sock", tls: false, maxConnections: 0, tlsCreds: "", allowedIdentities: [], requestId: "" };
  const ref = (vid: string) => ({ vm: "", name: "", pool: "p", vid });
  const request = (id: string, vid: string, more: Partial<Parameters<BlockExports["add"]>[0]> = {}) => ({
    id,
    volume: ref(vid),
    writable: false,
    writethrough: false,
    type: undefined,
    options: undefined,
    iothread: "",
    fixedIothread: false,
    requestId: "",
    ...more,
  });
  const events = () => opened.current.events.after(0, 1000).map((event) => [event.name, event.kwargs.id]);
  const settle = () => new Promise((resolve) => setImmediate(resolve));

  function build(): BlockExports {
    const volumes: ExportableVolumes = {
      exportable: async (naming) => volumeOf(naming!.vid),
      current: async (_pool, vid) => volumeOf(vid),
      ready: (_pool, vid) => vid !== "changing",
      bitmapsOf: async (_pool, vid) => (vid === "marked" ? ["b1"] : []),
      inUse: (volume, why) => failedPrecondition("VOLUME_IN_USE" as DomainError["reason"], `${volume.vid}: ${why}`),
    };
    const store = opened.current;
    return new BlockExports(store, exporter, volumes, { folder: async () => "/creds", expected: (name) => name }, new EventLog(store, systemClock), new RequestLedger(store, systemClock), systemClock, new LogCapture().log);
  }

  function volumeOf(vid: string): ExportableVolume {
    return { pool: "p", vid, label: `p:${vid}`, image: { ...image, path: `/pool/${vid}.raw` }, users: users.get(vid) ?? [] };
  }

  beforeEach(() => {
    exporter = new FakeExporter();
    users = new Map();
    exports = build();
  });

  it("exports over NBD with the request's options, its name the id when none is given", async () => {
    await exports.startNbdServer(nbdServer, ctx);
    const view = await exports.add(request("e1", "v1", { options: { type: "nbd", name: "", description: "d", bitmaps: [], allocationDepth: true } }), ctx);
    expect(view.record).toMatchObject({ id: "e1", pool: "p", vid: "v1", options: { type: "nbd", name: "e1", description: "d", allocationDepth: true }, shuttingDown: false });
    expect(exporter.server.added.get("e1")).toEqual({
      settings: { id: "e1", writable: false, writethrough: false, iothread: "", fixedIothread: false, options: { type: "nbd", name: "e1", description: "d", bitmaps: [], allocationDepth: true } },
      image: { ...image, path: "/pool/v1.raw" },
    });
    expect(exporter.server.nbd[0].address).toEqual({ kind: "unix", path: "/exports/nbd-socket/nbd.sock" });
    expect(events()).toEqual([
      ["nbd-server-start", undefined],
      ["block-export-add", "e1"],
    ]);
  });

  it("turns a vhost-user-blk socket's name into its path in the exports folder", async () => {
    const view = await exports.add(request("v", "v1", { type: "vhost-user-blk", options: { type: "vhost-user-blk", socket: "blk.sock", logicalBlockSize: 0, numQueues: 0 } }), ctx);
    expect(view.endpointPath).toBe("/exports/vhost-user-blk-socket/blk.sock");
    expect(exporter.server.added.get("v")?.settings.options).toEqual({ type: "vhost-user-blk", socketPath: "/exports/vhost-user-blk-socket/blk.sock", logicalBlockSize: 512, numQueues: 1 });
  });

  it("refuses a socket name that makes a path longer than a unix socket's, naming the field", async () => {
    exporter.root = `/${"d".repeat(40)}`;
    const longName = "s".repeat(64);
    await expect(exports.startNbdServer({ ...nbdServer, address: `unix:${longName}` }, ctx)).rejects.toMatchObject({ kind: "invalid-argument", field: "address" });
    const vhost = { type: "vhost-user-blk" as const, options: { type: "vhost-user-blk" as const, socket: longName, logicalBlockSize: 0, numQueues: 0 } };
    await expect(exports.add(request("v", "v1", vhost), ctx)).rejects.toMatchObject({ kind: "invalid-argument", field: "vhost_user_blk.socket" });
    expect(exporter.server.added.size).toBe(0);
  });

  it("refuses a type the host lacks, and NBD without a server", async () => {
    await expect(exports.add(request("f", "v1", { type: "fuse", options: { type: "fuse", mountpoint: "m", growable: false, allowOther: "auto" } }), ctx)).rejects.toMatchObject({ reason: "EXPORT_TYPE_UNSUPPORTED" });
    await expect(exports.add(request("n", "v1"), ctx)).rejects.toMatchObject({ reason: "NBD_SERVER_NOT_RUNNING" });
  });

  it("keeps an export shutting down until QEMU deletes it, then forgets it and tells block-export-deleted", async () => {
    await exports.startNbdServer(nbdServer, ctx);
    await exports.add(request("e1", "v1"), ctx);
    exporter.server.clients.set("e1", 1);
    await expect(exports.remove("e1", "safe", false, ctx)).rejects.toMatchObject({ reason: "EXPORT_IN_USE" });
    expect((await exports.list()).exports[0].record.shuttingDown).toBe(false);
    const removing = await exports.remove("e1", "hard", false, ctx);
    expect(removing?.record.shuttingDown).toBe(true);
    expect((await exports.list()).exports.map((view) => [view.record.id, view.record.shuttingDown])).toEqual([["e1", true]]);
    // Removing it again while it shuts down is harmless.
    expect((await exports.remove("e1", "hard", false, ctx))?.record.shuttingDown).toBe(true);
    await settle();
    expect((await exports.list()).exports).toEqual([]);
    expect(events().at(-1)).toEqual(["block-export-deleted", "e1"]);
    await expect(exports.remove("e1", "safe", false, ctx)).rejects.toMatchObject({ reason: "EXPORT_NOT_FOUND" });
    expect(await exports.remove("e1", "safe", true, ctx)).toBeUndefined();
  });

  it("refuses a writable export of a volume a running VM writes; a read-only one is refused only until running VMs' volumes are served", async () => {
    await exports.startNbdServer(nbdServer, ctx);
    users.set("v1", [{ vm: "work", writes: true }]);
    await expect(exports.add(request("w", "v1", { writable: true }), ctx)).rejects.toMatchObject({ reason: "VOLUME_IN_USE", message: expect.stringContaining("work") });
    await expect(exports.add(request("r", "v1"), ctx)).rejects.toMatchObject({ reason: "VOLUME_NOT_EXPORTABLE" });
  });

  it("stores an export before QEMU opens the volume, and forgets it when QEMU refuses", async () => {
    await exports.startNbdServer(nbdServer, ctx);
    jest.spyOn(exporter.server, "addExport").mockImplementationOnce(async (settings) => {
      // The storage area sees the export while QEMU opens the volume.
      expect(opened.current.blockExports.ofVolume("p", "v1").map((record) => record.id)).toEqual([settings.id]);
      throw new Error("QEMU refused");
    });
    await expect(exports.add(request("e", "v1"), ctx)).rejects.toThrow("QEMU refused");
    expect(opened.current.blockExports.list()).toEqual([]);
    expect(events().map(([name]) => name)).not.toContain("block-export-add");
    await expect(exports.add(request("c", "changing"), ctx)).rejects.toMatchObject({ reason: "VOLUME_NOT_EXPORTABLE" });
  });

  it("exposes only bitmaps the volume has", async () => {
    await exports.startNbdServer(nbdServer, ctx);
    const nbd = (bitmaps: string[]) => ({ type: "nbd" as const, name: "", description: "", bitmaps, allocationDepth: false });
    await expect(exports.add(request("x", "v1", { options: nbd(["b1"]) }), ctx)).rejects.toMatchObject({ reason: "BITMAP_NOT_FOUND" });
    await exports.add(request("m", "marked", { options: nbd(["b1"]) }), ctx);
    expect(exporter.server.added.get("m")?.settings.options).toMatchObject({ bitmaps: ["b1"] });
  });

  it("lets a volume have one writable export, or read-only ones only", async () => {
    await exports.startNbdServer(nbdServer, ctx);
    await exports.add(request("a", "v1"), ctx);
    await exports.add(request("b", "v1"), ctx);
    await expect(exports.add(request("c", "v1", { writable: true }), ctx)).rejects.toMatchObject({ reason: "VOLUME_IN_USE" });
    await exports.add(request("w", "v2", { writable: true }), ctx);
    await expect(exports.add(request("r", "v2"), ctx)).rejects.toMatchObject({ reason: "VOLUME_IN_USE" });
    await expect(exports.add(request("a", "v3"), ctx)).rejects.toMatchObject({ reason: "EXPORT_EXISTS" });
    await expect(exports.add(request("n", "v3", { options: { type: "nbd", name: "a", description: "", bitmaps: [], allocationDepth: false } }), ctx)).rejects.toMatchObject({ reason: "EXPORT_EXISTS" });
  });

  it("gives a new daemon the server and every export the store has, and forgets those shutting down", async () => {
    await exports.startNbdServer({ ...nbdServer, maxConnections: 3 }, ctx);
    await exports.add(request("kept", "v1"), ctx);
    await exports.add(request("going", "v2"), ctx);
    opened.current.blockExports.markShuttingDown("going");
    exporter.restart();
    // A new Steward on the same store.
    exports = build();
    await exports.adopt();
    expect(exporter.server.nbd).toEqual([{ address: { kind: "unix", path: "/exports/nbd-socket/nbd.sock" }, maxConnections: 3 }]);
    expect([...exporter.server.added.keys()]).toEqual(["kept"]);
    expect((await exports.list()).exports.map((view) => view.record.id)).toEqual(["kept"]);
    expect(events().at(-1)).toEqual(["block-export-deleted", "going"]);
  });

  it("lets Steward start when its daemon cannot be had, and tries again at the next call", async () => {
    await exports.startNbdServer(nbdServer, ctx);
    await exports.add(request("kept", "v1"), ctx);
    exporter.restart();
    const failing = jest.spyOn(exporter, "daemon").mockRejectedValueOnce(new Error("qemu-storage-daemon is gone"));
    exports = build();
    await expect(exports.adopt()).resolves.toBeUndefined();
    expect((await exports.list()).exports.map((view) => view.connectionCount)).toEqual([0]);
    failing.mockRestore();
    await exports.add(request("next", "v2"), ctx);
    expect([...exporter.server.added.keys()].sort()).toEqual(["kept", "next"]);
  });

  it("re-adds to an adopted daemon only what it lost", async () => {
    await exports.startNbdServer(nbdServer, ctx);
    await exports.add(request("kept", "v1"), ctx);
    await exports.add(request("lost", "v2"), ctx);
    exporter.server.added.delete("lost");
    const adding = jest.spyOn(exporter.server, "addExport");
    exports = build();
    await exports.adopt();
    expect(adding.mock.calls.map(([settings]) => settings.id)).toEqual(["lost"]);
  });

  it("ends the NBD exports with the server, each told deleted, and keeps the others", async () => {
    await exports.startNbdServer(nbdServer, ctx);
    await exports.add(request("n", "v1"), ctx);
    await exports.add(request("blk", "v2", { type: "vhost-user-blk", options: { type: "vhost-user-blk", socket: "s", logicalBlockSize: 0, numQueues: 0 } }), ctx);
    expect(await exports.stopNbdServer(ctx)).toBe(true);
    await settle();
    const listed = await exports.list();
    expect(listed.server).toBeUndefined();
    expect(listed.exports.map((view) => view.record.id)).toEqual(["blk"]);
    expect(events().filter(([name]) => name === "block-export-deleted")).toEqual([["block-export-deleted", "n"]]);
    expect(await exports.stopNbdServer(ctx)).toBe(false);
  });

  it("returns the first result to a retry of the same request_id, and refuses another server", async () => {
    const requestId = "2b7e1f1c-6a8e-4c59-9d0e-6f1f4d2a9b11";
    const first = await exports.startNbdServer({ ...nbdServer, requestId }, ctx);
    const again = await exports.startNbdServer({ ...nbdServer, requestId }, ctx);
    expect(again.record).toEqual(first.record);
    await expect(exports.startNbdServer(nbdServer, ctx)).rejects.toMatchObject({ reason: "NBD_SERVER_RUNNING" });
    const addId = "5c0f8d7e-1e2b-4a3c-8d9e-0f1a2b3c4d5e";
    await exports.add(request("e", "v1", { requestId: addId }), ctx);
    expect((await exports.add(request("e", "v1", { requestId: addId }), ctx)).record.id).toBe("e");
    expect(exporter.server.added.size).toBe(1);
  });
});
