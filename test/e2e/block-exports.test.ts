/**
 * Block exports with real clients: Steward's qemu-storage-daemon serves volumes over NBD, and
 * nbdinfo, nbdcopy, qemu-img and qemu-io (libnbd-bin, qemu-utils) read and write them.
 */
import * as grpc from "@grpc/grpc-js";
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { BlockExportType, RemoveMode } from "../../gen/steward/v1/block_export_pb";
import { BlockExportService } from "../../gen/steward/v1/block_export_service_pb";
import { EventService } from "../../gen/steward/v1/event_service_pb";
import { HostService } from "../../gen/steward/v1/host_service_pb";
import { PoolService } from "../../gen/steward/v1/pool_service_pb";
import { VolumeService } from "../../gen/steward/v1/volume_service_pb";
import { QmpClient } from "../../src/adapters/hypervisor/qemu/qmp/qmp-client";
import { createClient, type StewardClient } from "../../src/client/steward-client";
import { ChildServer } from "../fixtures/child-server";
import { rpcError } from "../fixtures/expect-rpc-error";
import { endStorageDaemon, storageDaemonPid } from "../fixtures/storage-daemon";
import { startTestServer, type TestServer } from "../fixtures/test-server";
import { makeTempDir, removeDir } from "../fixtures/temp-dir";
import { importStream, pattern, sha256 } from "../fixtures/volume-bytes";

const run = promisify(execFile);
const MiB = 1024 * 1024;

describe("block exports through qemu-storage-daemon", () => {
  let server: TestServer;
  let exports: StewardClient<typeof BlockExportService>;
  let volumes: StewardClient<typeof VolumeService>;
  let scratch: string;
  let socket: string;
  const holders: ChildProcess[] = [];
  const content = Buffer.concat([pattern(3 * MiB, 7), Buffer.alloc(5 * MiB)]);

  const nbdUri = (name: string) => `nbd+unix:///${name}?socket=${socket}`;
  const volume = (vid: string) => ({ pool: "default", vid, vm: "", name: "" });

  beforeAll(async () => {
    scratch = makeTempDir("steward-nbd-");
    server = await startTestServer();
    exports = createClient(BlockExportService, server.tcp);
    volumes = createClient(VolumeService, server.tcp);
    socket = path.join(server.dataDir, "exports", "nbd", "nbd.sock");
    for (const vid of ["data", "spare"]) {
      await volumes.createVolume({ pool: "default", vid, sizeBytes: BigInt(content.length) });
    }
    await volumes.importVolume(importStream({ pool: "default", vid: "data" }, content));
    await exports.startNbdServer({ address: "unix:nbd.sock", maxConnections: 8 });
  });

  afterAll(async () => {
    for (const holder of holders) holder.kill("SIGKILL");
    exports?.close();
    volumes?.close();
    await server?.stop();
    removeDir(scratch);
  });

  /** A client that holds a connection to an export until it is killed (qemu-io, waiting on its prompt). */
  async function holdConnection(name: string): Promise<ChildProcess> {
    const holder = spawn("qemu-io", ["-r", "-f", "raw", nbdUri(name)], { stdio: ["pipe", "ignore", "ignore"] });
    holders.push(holder);
    for (let waited = 0; waited < 5000; waited += 50) {
      const listed = await exports.listBlockExports({});
      if ((listed.server?.connectionCount ?? 0) > 0) return holder;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error("the client did not connect");
  }

  it("says in GetHostInfo which export types the host's QEMU has", async () => {
    const host = createClient(HostService, server.tcp);
    const { host: info } = await host.getHostInfo({});
    host.close();
    expect(info?.blockExportTypes).toContain(BlockExportType.NBD);
    expect(info?.capabilities).toContain("nbd-export");
  });

  it("serves a volume that nbdinfo lists with its name, description, size and meta contexts, and whose bytes nbdcopy reads", async () => {
    const { export: added } = await exports.addBlockExport({
      id: "data-ro",
      volume: volume("data"),
      options: { case: "nbd", value: { name: "data", description: "the data volume", allocationDepth: true } },
    });
    expect(added).toMatchObject({ id: "data-ro", type: BlockExportType.NBD, writable: false, shuttingDown: false, servedBy: "" });
    const { stdout } = await run("nbdinfo", ["--json", nbdUri("data")]);
    const info = JSON.parse(stdout) as { exports: { "export-name": string; description: string; "export-size": number; contexts: string[]; is_read_only: boolean }[] };
    expect(info.exports[0]).toMatchObject({ "export-name": "data", description: "the data volume", "export-size": content.length, is_read_only: true });
    expect(info.exports[0].contexts).toEqual(expect.arrayContaining(["base:allocation", "qemu:allocation-depth"]));
    const copy = path.join(scratch, "copy.raw");
    await run("nbdcopy", [nbdUri("data"), copy]);
    expect(sha256(fs.readFileSync(copy))).toBe(sha256(content));
    // qemu-img reads the same through the export.
    await run("qemu-img", ["convert", "-f", "raw", "-O", "raw", nbdUri("data"), path.join(scratch, "convert.raw")]);
    expect(sha256(fs.readFileSync(path.join(scratch, "convert.raw")))).toBe(sha256(content));
  });

  it("refuses writes through a read-only export", async () => {
    await expect(run("qemu-io", ["-f", "raw", "-c", "write -P 0x5a 0 64k", nbdUri("data")])).rejects.toThrow();
    const copy = path.join(scratch, "after.raw");
    await run("nbdcopy", [nbdUri("data"), copy]);
    expect(sha256(fs.readFileSync(copy))).toBe(sha256(content));
  });

  it("persists what a client writes through a writable export, in the volume", async () => {
    await exports.addBlockExport({ id: "spare-rw", volume: volume("spare"), writable: true });
    await run("qemu-io", ["-f", "raw", "-c", "write -P 0x5a 1M 64k", nbdUri("spare-rw")]);
    await removeAndWait("spare-rw", RemoveMode.SAFE);
    const onDisk = await bytesOf("spare");
    expect(onDisk.subarray(MiB, MiB + 64 * 1024).every((byte) => byte === 0x5a)).toBe(true);
    expect(onDisk.subarray(0, MiB).every((byte) => byte === 0)).toBe(true);
  });

  it("refuses a writable export beside another export of the same volume, and any export beside a writable one", async () => {
    const beside = await rpcError(exports.addBlockExport({ id: "data-rw", volume: volume("data"), writable: true }));
    expect(beside.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(beside.info?.reason).toBe("VOLUME_IN_USE");
    await exports.addBlockExport({ id: "spare-rw2", volume: volume("spare"), writable: true });
    const second = await rpcError(exports.addBlockExport({ id: "spare-ro", volume: volume("spare") }));
    expect(second.info?.reason).toBe("VOLUME_IN_USE");
    await removeAndWait("spare-rw2", RemoveMode.SAFE);
  });

  it("refuses SAFE removal while a client is connected, and HARD removal drops it, then tells block-export-deleted", async () => {
    await exports.addBlockExport({ id: "held", volume: volume("data"), options: { case: "nbd", value: { name: "held" } } });
    const holder = await holdConnection("held");
    const listed = await exports.listBlockExports({});
    expect(listed.exports.find((each) => each.id === "held")?.connectionCount).toBe(1);
    const safe = await rpcError(exports.removeBlockExport({ id: "held" }));
    expect(safe.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(safe.info?.reason).toBe("EXPORT_IN_USE");
    expect((await exports.listBlockExports({})).exports.find((each) => each.id === "held")?.shuttingDown).toBe(false);
    const exited = new Promise((resolve) => holder.once("exit", resolve));
    const deleted = await removeAndWait("held", RemoveMode.HARD);
    expect(deleted).toMatchObject({ id: "held", type: "nbd", pool: "default", vid: "data" });
    holder.stdin?.end();
    await exited;
    expect((await exports.listBlockExports({})).exports.map((each) => each.id)).not.toContain("held");
    await expect(run("nbdinfo", [nbdUri("held")])).rejects.toThrow();
  });

  it("refuses to delete or change a volume an export serves", async () => {
    const deleting = await rpcError(volumes.deleteVolume({ pool: "default", vid: "data" }));
    expect(deleting.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(deleting.info?.reason).toBe("VOLUME_IN_USE");
    expect(deleting.message).toContain("data-ro");
    const resizing = await rpcError(volumes.resizeVolume({ volume: volume("data"), sizeBytes: BigInt(16 * MiB) }));
    expect(resizing.info?.reason).toBe("VOLUME_IN_USE");
    // A snapshot would freeze the image the daemon has open as the revision.
    const snapshotting = await rpcError(volumes.snapshotVolume({ volume: volume("data") }));
    expect(snapshotting.info?.reason).toBe("VOLUME_IN_USE");
  });

  it("checks every field before anything reaches QEMU, naming it", async () => {
    const cases: [Parameters<typeof exports.addBlockExport>[0], string, string][] = [
      [{ id: "9bad", volume: volume("data") }, "INVALID_EXPORT_ID", "id"],
      [{ id: "x", volume: volume("data"), type: BlockExportType.FUSE, options: { case: "nbd", value: {} } }, "EXPORT_OPTIONS_MISMATCH", "nbd"],
      [{ id: "x", volume: volume("data"), type: 9 as BlockExportType }, "INVALID_FIELD", "type"],
      [{ id: "x", volume: volume("data"), type: BlockExportType.FUSE, options: { case: "fuse", value: { mountpoint: "../escape" } } }, "INVALID_FIELD", "fuse.mountpoint"],
      [{ id: "x", volume: volume("data"), type: BlockExportType.VHOST_USER_BLK, options: { case: "vhostUserBlk", value: { socket: "v.sock", logicalBlockSize: 1000 } } }, "INVALID_FIELD", "vhost_user_blk.logical_block_size"],
      [{ id: "x", volume: volume("data"), fixedIothread: true }, "INVALID_FIELD", "fixed_iothread"],
    ];
    for (const [request, reason, field] of cases) {
      const refused = await rpcError(exports.addBlockExport(request));
      expect([refused.code, refused.info?.reason, refused.info?.metadata.field]).toEqual([grpc.status.INVALID_ARGUMENT, reason, field]);
    }
    expect((await rpcError(exports.addBlockExport({ id: "data-ro", volume: volume("spare") }))).info?.reason).toBe("EXPORT_EXISTS");
    expect((await rpcError(exports.addBlockExport({ id: "other", volume: volume("spare"), options: { case: "nbd", value: { name: "data" } } }))).info?.reason).toBe("EXPORT_EXISTS");
    expect((await rpcError(exports.addBlockExport({ id: "missing", volume: volume("nothing") }))).code).toBe(grpc.status.NOT_FOUND);
    expect((await rpcError(exports.removeBlockExport({ id: "missing" }))).info?.reason).toBe("EXPORT_NOT_FOUND");
    expect((await exports.removeBlockExport({ id: "missing", allowMissing: true })).export).toBeUndefined();
    const running = await rpcError(exports.startNbdServer({ address: "unix:other.sock" }));
    expect(running.info?.reason).toBe("NBD_SERVER_RUNNING");
    const plain = await rpcError(exports.startNbdServer({ address: "192.0.2.1:10809" }));
    expect([plain.code, plain.info?.reason]).toEqual([grpc.status.INVALID_ARGUMENT, "TLS_REQUIRED"]);
    const address = await rpcError(exports.startNbdServer({ address: "unix:../x" }));
    expect([address.code, address.info?.reason]).toEqual([grpc.status.INVALID_ARGUMENT, "INVALID_NBD_ADDRESS"]);
  });

  it("exports a volume as a FUSE file in the exports folder, whose bytes are the volume's and whose writes persist", async () => {
    const { export: added } = await exports.addBlockExport({
      id: "as-file",
      volume: volume("spare"),
      writable: true,
      type: BlockExportType.FUSE,
      options: { case: "fuse", value: { mountpoint: "spare.raw" } },
    });
    const file = path.join(server.dataDir, "exports", "fuse", "spare.raw");
    expect(added?.options).toMatchObject({ case: "fuse", value: { mountpoint: "spare.raw", mountpointPath: file } });
    expect(fs.statSync(file).size).toBe(content.length);
    const handle = fs.openSync(file, "r+");
    fs.writeSync(handle, Buffer.alloc(4096, 0x77), 0, 4096, 2 * MiB);
    fs.fsyncSync(handle);
    fs.closeSync(handle);
    await removeAndWait("as-file", RemoveMode.SAFE);
    // Unmounted: the mount point is the empty file under it again.
    expect(fs.statSync(file).size).toBe(0);
    const written = await bytesOf("spare");
    expect(written.subarray(2 * MiB, 2 * MiB + 4096).every((byte) => byte === 0x77)).toBe(true);
  });

  it("exports a volume as a vhost-user-blk socket in the exports folder, which another VMM's device takes", async () => {
    const { export: added } = await exports.addBlockExport({
      id: "as-blk",
      volume: volume("data"),
      type: BlockExportType.VHOST_USER_BLK,
      options: { case: "vhostUserBlk", value: { socket: "data.sock", logicalBlockSize: 4096, numQueues: 2 } },
    });
    const socketPath = path.join(server.dataDir, "exports", "vhost-user-blk", "data.sock");
    expect(added?.options).toMatchObject({ case: "vhostUserBlk", value: { socket: "data.sock", logicalBlockSize: 4096, numQueues: 2, socketPath } });
    // A VMM: a QEMU whose vhost-user-blk-pci device negotiates with the export as it is made
    // (its CPUs never run). The export is read-only, and says so in its features.
    const features = await vhostUserBlkFeatures(socketPath, scratch);
    expect(features).toEqual(expect.arrayContaining([expect.stringMatching(/^VIRTIO_BLK_F_RO/), expect.stringMatching(/^VIRTIO_BLK_F_BLK_SIZE/), expect.stringMatching(/^VIRTIO_BLK_F_MQ/)]));
    await removeAndWait("as-blk", RemoveMode.SAFE);
  });

  it("stops the NBD server, which ends its exports", async () => {
    const deleted = deletedEvents();
    expect(await exports.stopNbdServer({})).toMatchObject({ stopped: true });
    await deleted.until((events) => events.some((event) => event.id === "data-ro"));
    deleted.stop();
    const listed = await exports.listBlockExports({});
    expect(listed.server).toBeUndefined();
    expect(listed.exports).toEqual([]);
    expect(await exports.stopNbdServer({})).toMatchObject({ stopped: false });
    const refused = await rpcError(exports.addBlockExport({ id: "late", volume: volume("data") }));
    expect(refused.info?.reason).toBe("NBD_SERVER_NOT_RUNNING");
  });

  /** Removes an export and waits for its block-export-deleted event; returns the event's kwargs. */
  async function removeAndWait(id: string, mode: RemoveMode): Promise<Record<string, string>> {
    const deleted = deletedEvents();
    await exports.removeBlockExport({ id, mode });
    const events = await deleted.until((seen) => seen.some((event) => event.id === id));
    deleted.stop();
    return events.find((event) => event.id === id)!;
  }

  function deletedEvents() {
    const client = createClient(EventService, server.tcp);
    const abort = new AbortController();
    const seen: Record<string, string>[] = [];
    const stream = client.events({ namePrefixes: ["block-export-deleted"] }, { signal: abort.signal });
    let connected = () => {};
    const ready = new Promise<void>((resolve) => (connected = resolve));
    void (async () => {
      try {
        for await (const message of stream) {
          if (message.kind.case !== "event") continue;
          if (message.kind.value.name === "connection-established") connected();
          else seen.push(message.kind.value.kwargs);
        }
      } catch {
        // cancelled at the end
      }
    })();
    return {
      async until(done: (events: Record<string, string>[]) => boolean): Promise<Record<string, string>[]> {
        await ready;
        for (let waited = 0; !done(seen); waited += 20) {
          if (waited > 10_000) throw new Error(`no such event; seen: ${JSON.stringify(seen)}`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        return seen;
      },
      stop() {
        abort.abort();
        client.close();
      },
    };
  }

  /** The volume's bytes as the pool keeps them (the file pool's `<vid>.img`). */
  async function bytesOf(vid: string): Promise<Buffer> {
    return fs.readFileSync(path.join(server.dataDir, "pools", "default", `${vid}.img`));
  }
});

async function waitGone(pid: number): Promise<void> {
  for (let waited = 0; waited < 5000; waited += 20) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Steward restarts as a process, as it does on a host: the daemon and its exports outlive it. */
describe("block exports across restarts of Steward", () => {
  let dataDir: string;
  let child: ChildServer | undefined;
  let address: string;

  const socket = () => path.join(dataDir, "exports", "nbd", "nbd.sock");
  const nbdUri = (name: string) => `nbd+unix:///${name}?socket=${socket()}`;

  beforeAll(() => {
    dataDir = makeTempDir("steward-nbdr-");
  });

  afterAll(async () => {
    child?.signal("SIGKILL");
    await child?.exited;
    endStorageDaemon(dataDir);
    removeDir(dataDir);
  });

  async function start(): Promise<StewardClient<typeof BlockExportService>> {
    child = new ChildServer(["--data-dir", dataDir, "--listen", "127.0.0.1:0", "--hypervisor", "sim"]);
    [address] = await child.listening();
    return createClient(BlockExportService, address);
  }

  async function stop(signal: NodeJS.Signals): Promise<void> {
    child!.signal(signal);
    await child!.exited;
    child = undefined;
  }

  it("serves its exports again from the same daemon after a restart, and from a new one when the daemon died meanwhile", async () => {
    let exports = await start();
    const volumes = createClient(VolumeService, address);
    await volumes.createVolume({ pool: "default", vid: "kept", sizeBytes: BigInt(4 * MiB) });
    await volumes.importVolume(importStream({ pool: "default", vid: "kept" }, pattern(4 * MiB, 3)));
    volumes.close();
    await exports.startNbdServer({ address: "unix:nbd.sock", maxConnections: 4 });
    await exports.addBlockExport({ id: "kept", volume: { pool: "default", vid: "kept", vm: "", name: "" } });
    exports.close();
    const pid = storageDaemonPid(dataDir);
    expect(pid).toBeDefined();

    await stop("SIGKILL");
    // The daemon outlives Steward: its export still answers.
    expect(Number((await run("nbdinfo", ["--size", nbdUri("kept")])).stdout.trim())).toBe(4 * MiB);
    exports = await start();
    expect(storageDaemonPid(dataDir)).toBe(pid);
    const listed = await exports.listBlockExports({});
    expect(listed.exports.map((each) => each.id)).toEqual(["kept"]);
    expect(listed.server).toMatchObject({ address: "unix:nbd.sock", maxConnections: 4 });
    exports.close();

    await stop("SIGTERM");
    process.kill(pid!, "SIGKILL");
    await waitGone(pid!);
    exports = await start();
    const again = storageDaemonPid(dataDir);
    expect(again).toBeDefined();
    expect(again).not.toBe(pid);
    const copy = path.join(dataDir, "copy.raw");
    await run("nbdcopy", [nbdUri("kept"), copy]);
    expect(sha256(fs.readFileSync(copy))).toBe(sha256(pattern(4 * MiB, 3)));
    expect((await exports.listBlockExports({})).exports.map((each) => each.id)).toEqual(["kept"]);
    exports.close();
  });
});

/** An NBD server with TLS: x509 certificates, and only the identities the request allows. */
describe("block exports over TLS", () => {
  let server: TestServer;
  let exports: StewardClient<typeof BlockExportService>;
  let certs: string;
  const client = (name: string) => path.join(certs, name);
  const uri = (tlsDir?: string) =>
    tlsDir === undefined ? `nbd+unix:///disk?socket=${path.join(server.dataDir, "exports", "nbd", "tls.sock")}` : `nbds+unix:///disk?socket=${path.join(server.dataDir, "exports", "nbd", "tls.sock")}&tls-certificates=${tlsDir}&tls-verify-peer=false`;

  beforeAll(async () => {
    certs = makeTempDir("steward-nbdtls-");
    server = await startTestServer();
    exports = createClient(BlockExportService, server.tcp);
    makeNbdCertificates(certs, path.join(server.dataDir, "nbd-tls", "mine"));
    const volumes = createClient(VolumeService, server.tcp);
    await volumes.createVolume({ pool: "default", vid: "secret", sizeBytes: BigInt(MiB) });
    await volumes.importVolume(importStream({ pool: "default", vid: "secret" }, pattern(MiB, 9)));
    volumes.close();
  });

  afterAll(async () => {
    exports?.close();
    await server?.stop();
    removeDir(certs);
  });

  it("refuses a credentials set Steward does not have, and its own when it runs without mTLS", async () => {
    const missing = await rpcError(exports.startNbdServer({ address: "unix:tls.sock", tls: true, tlsCreds: "absent" }));
    expect([missing.code, missing.info?.reason]).toEqual([grpc.status.NOT_FOUND, "TLS_CREDS_NOT_FOUND"]);
    const own = await rpcError(exports.startNbdServer({ address: "unix:tls.sock", tls: true }));
    expect(own.info?.reason).toBe("TLS_CREDS_NOT_FOUND");
    expect(own.message).toContain("--tls-client-ca");
    expect((await exports.listBlockExports({})).server).toBeUndefined();
  });

  it("lets in only a client whose certificate the CA signed and the request allows", async () => {
    const { server: started } = await exports.startNbdServer({ address: "unix:tls.sock", tls: true, tlsCreds: "mine", allowedIdentities: ["O=Example,CN=backup"] });
    expect(started).toMatchObject({ tls: true, tlsCreds: "mine", allowedIdentities: ["O=Example,CN=backup"] });
    await exports.addBlockExport({ id: "disk", volume: { pool: "default", vid: "secret", vm: "", name: "" } });
    const copy = path.join(certs, "copy.raw");
    await run("nbdcopy", [uri(client("backup")), copy]);
    expect(sha256(fs.readFileSync(copy))).toBe(sha256(pattern(MiB, 9)));
    // Without TLS, with a certificate of an identity not allowed, with one another CA signed.
    await expect(run("nbdinfo", ["--size", uri()])).rejects.toThrow(/TLS/);
    await expect(run("nbdinfo", ["--size", uri(client("intruder"))])).rejects.toThrow();
    await expect(run("nbdinfo", ["--size", uri(client("stranger"))])).rejects.toThrow();
    await exports.stopNbdServer({});
  });
});

/**
 * A CA and a server certificate in QEMU's layout (`serverSet`), and client folders in libnbd's
 * (ca-cert.pem, client-cert.pem, client-key.pem) under `dir`: backup and intruder, signed by the
 * CA, and stranger, signed by another.
 */
function makeNbdCertificates(dir: string, serverSet: string): void {
  const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  const authority = (name: string) => openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.crt`, "-days", "2", "-subj", `/CN=${name}`);
  const signed = (ca: string, name: string, usage: string) => {
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/O=Example/CN=${name}`);
    fs.writeFileSync(path.join(dir, `${name}.ext`), `extendedKeyUsage=${usage}\nsubjectAltName=DNS:localhost\n`);
    openssl("x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.crt`, "-CAkey", `${ca}.key`, "-CAcreateserial", "-out", `${name}.crt`, "-days", "2", "-extfile", `${name}.ext`);
  };
  authority("ca");
  authority("other-ca");
  signed("ca", "server", "serverAuth");
  fs.mkdirSync(serverSet, { recursive: true });
  fs.copyFileSync(path.join(dir, "ca.crt"), path.join(serverSet, "ca-cert.pem"));
  fs.copyFileSync(path.join(dir, "server.crt"), path.join(serverSet, "server-cert.pem"));
  fs.copyFileSync(path.join(dir, "server.key"), path.join(serverSet, "server-key.pem"));
  for (const [ca, name] of [["ca", "backup"], ["ca", "intruder"], ["other-ca", "stranger"]]) {
    signed(ca, name, "clientAuth");
    fs.mkdirSync(path.join(dir, name));
    fs.copyFileSync(path.join(dir, `${ca}.crt`), path.join(dir, name, "ca-cert.pem"));
    fs.copyFileSync(path.join(dir, `${name}.crt`), path.join(dir, name, "client-cert.pem"));
    fs.copyFileSync(path.join(dir, `${name}.key`), path.join(dir, name, "client-key.pem"));
  }
}

/** Persistent dirty bitmaps of qcow2 volumes, exported for a client to read only what changed. */
describe("dirty bitmaps exported over NBD", () => {
  let server: TestServer;
  let exports: StewardClient<typeof BlockExportService>;
  let volumes: StewardClient<typeof VolumeService>;
  let poolDir: string;
  const disk = { pool: "q", vid: "disk", vm: "", name: "" };
  const uri = (name: string) => `nbd+unix:///${name}?socket=${path.join(server.dataDir, "exports", "nbd", "nbd.sock")}`;

  beforeAll(async () => {
    poolDir = makeTempDir("steward-nbdq-");
    server = await startTestServer();
    exports = createClient(BlockExportService, server.tcp);
    volumes = createClient(VolumeService, server.tcp);
    const pools = createClient(PoolService, server.tcp);
    await pools.addPool({ name: "q", driver: "qcow2", parameters: { dir_path: poolDir } });
    pools.close();
    await volumes.createVolume({ pool: "q", vid: "disk", sizeBytes: BigInt(8 * MiB) });
    await volumes.createVolume({ pool: "default", vid: "plain", sizeBytes: BigInt(MiB) });
    await exports.startNbdServer({ address: "unix:nbd.sock" });
  });

  afterAll(async () => {
    exports?.close();
    volumes?.close();
    await server?.stop();
    removeDir(poolDir);
  });

  /** The extents of a meta context, as nbdinfo --map tells them: [offset, length, dirty]. */
  async function map(name: string, context: string): Promise<[number, number, boolean][]> {
    const { stdout } = await run("nbdinfo", ["--json", `--map=${context}`, uri(name)]);
    return (JSON.parse(stdout) as { offset: number; length: number; type: number }[]).map((entry) => [entry.offset, entry.length, (entry.type & 1) === 1]);
  }

  it("adds, lists, clears and removes a bitmap of a qcow2 volume, and refuses one of a raw pool", async () => {
    const { bitmap } = await volumes.addVolumeBitmap({ volume: disk, name: "b1" });
    expect(bitmap).toMatchObject({ name: "b1", granularityBytes: 65536n, recording: true, inconsistent: false });
    await volumes.addVolumeBitmap({ volume: disk, name: "fine", granularityBytes: 4096n });
    expect((await volumes.listVolumeBitmaps({ volume: disk })).bitmaps.map((each) => [each.name, each.granularityBytes])).toEqual([
      ["b1", 65536n],
      ["fine", 4096n],
    ]);
    expect((await rpcError(volumes.addVolumeBitmap({ volume: disk, name: "b1" }))).info?.reason).toBe("BITMAP_EXISTS");
    expect((await rpcError(volumes.addVolumeBitmap({ volume: disk, name: "odd", granularityBytes: 1000n }))).info?.metadata.field).toBe("granularity_bytes");
    await volumes.removeVolumeBitmap({ volume: disk, name: "fine" });
    expect((await rpcError(volumes.removeVolumeBitmap({ volume: disk, name: "fine" }))).info?.reason).toBe("BITMAP_NOT_FOUND");
    await volumes.removeVolumeBitmap({ volume: disk, name: "fine", allowMissing: true });
    const raw = await rpcError(volumes.addVolumeBitmap({ volume: { pool: "default", vid: "plain", vm: "", name: "" }, name: "b1" }));
    expect([raw.code, raw.info?.reason]).toEqual([grpc.status.FAILED_PRECONDITION, "BITMAPS_UNSUPPORTED"]);
  });

  it("exports a bitmap that tells only the ranges written since it was added", async () => {
    await exports.addBlockExport({ id: "writer", volume: disk, writable: true });
    await run("qemu-io", ["-f", "raw", "-c", "write -P 0x11 1M 64k", "-c", "write -P 0x22 5M 128k", uri("writer")]);
    // Bitmaps do not change under an export.
    expect((await rpcError(volumes.clearVolumeBitmap({ volume: disk, name: "b1" }))).info?.reason).toBe("VOLUME_IN_USE");
    await removeExport(exports, "writer");
    await exports.addBlockExport({ id: "changes", volume: disk, options: { case: "nbd", value: { bitmaps: ["b1"] } } });
    const { stdout: info } = await run("nbdinfo", ["--json", uri("changes")]);
    expect((JSON.parse(info) as { exports: { contexts: string[] }[] }).exports[0].contexts).toContain("qemu:dirty-bitmap:b1");
    const dirty = (await map("changes", "qemu:dirty-bitmap:b1")).filter(([, , isDirty]) => isDirty).map(([offset, length]) => [offset, length]);
    expect(dirty).toEqual([
      [MiB, 64 * 1024],
      [5 * MiB, 128 * 1024],
    ]);
    const missing = await rpcError(exports.addBlockExport({ id: "nope", volume: disk, options: { case: "nbd", value: { bitmaps: ["absent"] } } }));
    expect([missing.code, missing.info?.reason]).toEqual([grpc.status.NOT_FOUND, "BITMAP_NOT_FOUND"]);
    await removeExport(exports, "changes");
  });

  it("clears a bitmap, after which it tells nothing changed", async () => {
    const { bitmap } = await volumes.clearVolumeBitmap({ volume: disk, name: "b1" });
    expect(bitmap?.name).toBe("b1");
    await exports.addBlockExport({ id: "after", volume: disk, options: { case: "nbd", value: { bitmaps: ["b1"] } } });
    expect((await map("after", "qemu:dirty-bitmap:b1")).some(([, , isDirty]) => isDirty)).toBe(false);
    await removeExport(exports, "after");
  });
});

/** Removes an export and waits until it is gone from the list (QEMU deleted it). */
async function removeExport(exports: StewardClient<typeof BlockExportService>, id: string): Promise<void> {
  await exports.removeBlockExport({ id });
  for (let waited = 0; (await exports.listBlockExports({})).exports.some((each) => each.id === id); waited += 20) {
    if (waited > 5000) throw new Error(`export ${id} was not deleted`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * The device features a vhost-user-blk export offers, as a QEMU with a vhost-user-blk-pci
 * device on its socket heard them while it made the device (x-query-virtio-status); the QEMU,
 * started paused, is ended before this returns.
 */
async function vhostUserBlkFeatures(socketPath: string, scratch: string): Promise<string[]> {
  const qmpSocket = path.join(scratch, "vmm-qmp.sock");
  const vmm = spawn(
    "qemu-system-x86_64",
    [
      "-M", "q35", "-accel", "tcg", "-S", "-display", "none", "-nodefaults", "-m", "128",
      "-object", "memory-backend-memfd,id=mem,size=128M,share=on", "-numa", "node,memdev=mem",
      "-chardev", `socket,id=blk,path=${socketPath}`, "-device", "vhost-user-blk-pci,chardev=blk,id=blk0,num-queues=2",
      "-qmp", `unix:${qmpSocket},server=on,wait=off`,
    ],
    { stdio: "ignore" },
  );
  const exited = new Promise((resolve) => vmm.once("exit", resolve));
  try {
    let qmp: QmpClient | undefined;
    for (let waited = 0; qmp === undefined; waited += 20) {
      if (vmm.exitCode !== null || waited > 15_000) throw new Error("the VMM did not start with the vhost-user-blk device");
      await new Promise((resolve) => setTimeout(resolve, 20));
      qmp = await QmpClient.connect(qmpSocket, { timeoutMs: 2000 }).catch(() => undefined);
    }
    try {
      const status = await qmp.execute<{ "host-features": { "dev-features": string[] } }>("x-query-virtio-status", { path: "/machine/peripheral/blk0/virtio-backend" });
      return status["host-features"]["dev-features"];
    } finally {
      qmp.close();
    }
  } finally {
    vmm.kill("SIGKILL");
    await exited;
  }
}
