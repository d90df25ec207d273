import { checkAddExport, checkNbdServer, parseAddress } from "../../../../src/core/exports/export-requests";

const server = { address: "127.0.0.1:10809", tls: false, maxConnections: 0, tlsCreds: "", allowedIdentities: [], requestId: "" };
const add = { id: "e", volume: { vm: "", name: "", pool: "p", vid: "v" }, writable: false, writethrough: false, type: undefined, options: undefined, iothread: "", fixedIothread: false, requestId: "" };

describe("NBD server requests", () => {
  it("parses host:port, [IPv6]:port and unix:<name>, telling loopback apart", () => {
    expect(parseAddress("127.0.0.1:10809")).toEqual({ kind: "inet", host: "127.0.0.1", port: 10809, loopback: true });
    expect(parseAddress("[::1]:1")).toEqual({ kind: "inet", host: "::1", port: 1, loopback: true });
    expect(parseAddress("backup.example:10809")).toMatchObject({ host: "backup.example", loopback: false });
    expect(parseAddress("unix:nbd.sock")).toEqual({ kind: "unix", name: "nbd.sock" });
  });

  it.each(["", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "300.1.1.1:1", "[zz]:1", "unix:", "unix:a/b", "unix:..", "host name:1"])("refuses the address %j, naming it", (address) => {
    expect(() => parseAddress(address)).toThrow(expect.objectContaining({ reason: "INVALID_NBD_ADDRESS", field: "address" }));
  });

  it("requires TLS off loopback, and TLS settings only with TLS", () => {
    expect(() => checkNbdServer({ ...server, address: "192.0.2.1:10809" })).toThrow(expect.objectContaining({ reason: "TLS_REQUIRED", field: "tls" }));
    expect(() => checkNbdServer({ ...server, address: "192.0.2.1:10809", tls: true })).not.toThrow();
    expect(() => checkNbdServer({ ...server, tlsCreds: "mine" })).toThrow(expect.objectContaining({ field: "tls_creds" }));
    expect(() => checkNbdServer({ ...server, allowedIdentities: ["CN=a"] })).toThrow(expect.objectContaining({ field: "allowed_identities" }));
    expect(() => checkNbdServer({ ...server, tls: true, allowedIdentities: ["CN=a\nCN=b"] })).toThrow(expect.objectContaining({ field: "allowed_identities[0]" }));
    expect(() => checkNbdServer({ ...server, tls: true, tlsCreds: "../etc" })).toThrow(expect.objectContaining({ field: "tls_creds" }));
    // Steward's own set is put together in a dot-folder no request names.
    expect(() => checkNbdServer({ ...server, tls: true, tlsCreds: ".steward" })).toThrow(expect.objectContaining({ field: "tls_creds" }));
  });
});

describe("AddBlockExport requests", () => {
  it("fills in each type's defaults", () => {
    expect(checkAddExport(add)).toEqual({ type: "nbd", name: "e", description: "", bitmaps: [], allocationDepth: false });
    expect(checkAddExport({ ...add, type: "vhost-user-blk", options: { type: "vhost-user-blk", socket: "s", logicalBlockSize: 0, numQueues: 0 } })).toEqual({ type: "vhost-user-blk", socket: "s", logicalBlockSize: 512, numQueues: 1 });
  });

  it.each([
    [{ id: "" }, "id"],
    [{ id: "a".repeat(65) }, "id"],
    [{ id: "a b" }, "id"],
    [{ volume: undefined }, "volume"],
    [{ iothread: "1x" }, "iothread"],
    [{ fixedIothread: true }, "fixed_iothread"],
    [{ type: "fuse" as const }, "fuse.mountpoint"],
    [{ type: "vhost-user-blk" as const }, "vhost_user_blk.socket"],
    [{ type: "fuse" as const, options: { type: "nbd" as const, name: "", description: "", bitmaps: [], allocationDepth: false } }, "nbd"],
    [{ options: { type: "nbd" as const, name: "x".repeat(4097), description: "", bitmaps: [], allocationDepth: false } }, "nbd.name"],
    [{ options: { type: "nbd" as const, name: "", description: "", bitmaps: ["b", "b"], allocationDepth: false } }, "nbd.bitmaps"],
    [{ options: { type: "nbd" as const, name: "", description: "", bitmaps: ["no/slash"], allocationDepth: false } }, "nbd.bitmaps[0]"],
    [{ type: "vhost-user-blk" as const, options: { type: "vhost-user-blk" as const, socket: "s", logicalBlockSize: 768, numQueues: 0 } }, "vhost_user_blk.logical_block_size"],
    [{ type: "vhost-user-blk" as const, options: { type: "vhost-user-blk" as const, socket: "s", logicalBlockSize: 0, numQueues: 1025 } }, "vhost_user_blk.num_queues"],
    [{ type: "fuse" as const, options: { type: "fuse" as const, mountpoint: "/etc/passwd", growable: false, allowOther: "auto" as const } }, "fuse.mountpoint"],
  ])("refuses %j, naming %s", (change, field) => {
    expect(() => checkAddExport({ ...add, ...change })).toThrow(expect.objectContaining({ kind: "invalid-argument", field }));
  });
});
