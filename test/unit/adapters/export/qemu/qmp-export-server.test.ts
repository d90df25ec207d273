import { blockdevOf, exportArgs, nodeNameOf } from "../../../../../src/adapters/export/qemu/qmp-export-server";
import { countTcp, countUnix } from "../../../../../src/adapters/export/qemu/nbd-connections";

describe("what the QMP export server sends QEMU", () => {
  it("names a node by its export's id, within QEMU's 31 characters", () => {
    expect(nodeNameOf("a".repeat(64))).toMatch(/^export-[0-9a-f]{20}$/);
    expect(nodeNameOf("a")).not.toBe(nodeNameOf("b"));
  });

  it("opens a raw image, read-only unless the export writes", () => {
    expect(blockdevOf("n", { path: "/p/v.raw", format: "raw", backing: [] }, false)).toEqual({
      driver: "raw",
      "node-name": "n",
      "read-only": true,
      file: { driver: "file", filename: "/p/v.raw", "read-only": true },
    });
    expect(blockdevOf("n", { path: "/p/v.raw", format: "raw", backing: [] }, true)).toMatchObject({ "read-only": false, file: { "read-only": false, discard: "unmap" } });
  });

  it("opens a qcow2 image's backing chain from the paths given, and no further", () => {
    expect(blockdevOf("n", { path: "/p/top.qcow2", format: "qcow2", backing: ["/p/mid.qcow2", "/p/base.qcow2"] }, false)).toEqual({
      driver: "qcow2",
      "node-name": "n",
      "read-only": true,
      file: { driver: "file", filename: "/p/top.qcow2", "read-only": true },
      backing: {
        driver: "qcow2",
        "read-only": true,
        file: { driver: "file", filename: "/p/mid.qcow2", "read-only": true },
        backing: { driver: "qcow2", "read-only": true, file: { driver: "file", filename: "/p/base.qcow2", "read-only": true }, backing: null },
      },
    });
  });

  it("gives block-export-add every field of each type", () => {
    const common = { id: "e", writable: true, writethrough: true, iothread: "io1", fixedIothread: true };
    expect(exportArgs({ ...common, options: { type: "nbd", name: "n", description: "d", bitmaps: ["b"], allocationDepth: true } }, "node")).toEqual({
      type: "nbd", id: "e", "node-name": "node", writable: true, writethrough: true, iothread: "io1", "fixed-iothread": true, name: "n", description: "d", bitmaps: ["b"], "allocation-depth": true,
    });
    expect(exportArgs({ ...common, iothread: "", options: { type: "vhost-user-blk", socketPath: "/s", logicalBlockSize: 4096, numQueues: 2 } }, "node")).toEqual({
      type: "vhost-user-blk", id: "e", "node-name": "node", writable: true, writethrough: true, addr: { type: "unix", path: "/s" }, "logical-block-size": 4096, "num-queues": 2,
    });
    expect(exportArgs({ ...common, iothread: "", options: { type: "fuse", mountpointPath: "/m", growable: true, allowOther: "off" } }, "node")).toEqual({
      type: "fuse", id: "e", "node-name": "node", writable: true, writethrough: true, mountpoint: "/m", growable: true, "allow-other": "off",
    });
  });
});

describe("counting an NBD server's clients in /proc", () => {
  it("counts the process's connected sockets accepted on the unix socket", () => {
    const table = [
      "Num       RefCount Protocol Flags    Type St Inode Path",
      "0000: 00000002 00000000 00010000 0001 01 100 /run/nbd.sock",
      "0000: 00000003 00000000 00000000 0001 03 101 /run/nbd.sock",
      "0000: 00000003 00000000 00000000 0001 03 102 /run/nbd.sock",
      "0000: 00000003 00000000 00000000 0001 03 103 /run/other.sock",
      "0000: 00000003 00000000 00000000 0001 03 104 /run/nbd.sock",
    ].join("\n");
    expect(countUnix(table, "/run/nbd.sock", new Set(["100", "101", "102", "103"]))).toBe(2);
  });

  it("counts established TCP connections on the server's port", () => {
    const table = [
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
      "   0: 0100007F:2A39 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 200 1",
      "   1: 0100007F:2A39 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 201 1",
      "   2: 0100007F:2A3A 0100007F:D432 01 00000000:00000000 00:00000000 00000000     0        0 202 1",
    ].join("\n");
    expect(countTcp(table, 10809, new Set(["200", "201", "202"]))).toBe(1);
  });
});
