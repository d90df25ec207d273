import * as fs from "node:fs";
import * as path from "node:path";
import { PoolService } from "../../gen/steward/v1/pool_service_pb";
import { VmClass } from "../../gen/steward/v1/vm_pb";
import { VmService } from "../../gen/steward/v1/vm_service_pb";
import { VolumeService } from "../../gen/steward/v1/volume_service_pb";
import { createClient, type StewardClient } from "../../src/client/steward-client";
import { ChildServer } from "../fixtures/child-server";
import { makeTempDir, removeDir } from "../fixtures/temp-dir";
import { collect, importStream, templateStream, pattern, rebuild, sha256 } from "../fixtures/volume-bytes";

const MiB = 1024 * 1024;
/** Large enough that a copy or an import takes a while, so that a kill lands in the middle. */
const CONTENT_BYTES = 32 * MiB;
const CONTENTS = [pattern(CONTENT_BYTES, 1), pattern(CONTENT_BYTES, 2)];
const SHAS = CONTENTS.map(sha256);

interface Clients {
  pools: StewardClient<typeof PoolService>;
  volumes: StewardClient<typeof VolumeService>;
  vms: StewardClient<typeof VmService>;
  close(): void;
}

function clientsOf(address: string): Clients {
  const clients = { pools: createClient(PoolService, address), volumes: createClient(VolumeService, address), vms: createClient(VmService, address) };
  return { ...clients, close: () => Object.values(clients).forEach((client) => client.close()) };
}

/** Every file under `folder`, relative to it. */
function filesUnder(folder: string): string[] {
  return (fs.readdirSync(folder, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(folder, path.join(entry.parentPath, entry.name)))
    .sort();
}

/**
 * A server SIGKILLed while a storage change runs, again and again: after each restart, the
 * store and the pools' folders agree (every volume's record has its file, every file its record,
 * no temporary is left), and every volume holds one whole content it was given, never a mix.
 */
describe("storage across SIGKILL", () => {
  let dir: string;
  let server: ChildServer | undefined;
  let clients: Clients | undefined;
  const args = () => ["--data-dir", dir, "--listen", "127.0.0.1:0", "--hypervisor", "sim"];
  const folders = () => ({ default: path.join(dir, "pools", "default"), images: path.join(dir, "pools", "images") });

  async function start(): Promise<Clients> {
    server = new ChildServer(args());
    const [tcp] = (await server.listening()) as [string];
    clients = clientsOf(tcp);
    return clients;
  }

  async function kill(): Promise<void> {
    server?.signal("SIGKILL");
    await server?.exited;
    clients?.close();
    server = undefined;
    clients = undefined;
  }

  /**
   * Runs `change` over and over until the server is killed: `afterMs` in, or, given a pool, the
   * first moment a temporary of that pool exists, `afterMs` later (the kill then lands in the
   * middle of a write: that is what the test is about).
   */
  async function killDuring(afterMs: number, change: (clients: Clients, round: number) => Promise<unknown>, midWriteOf?: keyof ReturnType<typeof folders>): Promise<void> {
    const running = clients!;
    const loop = (async () => {
      for (let round = 0; ; round++) {
        try {
          await change(running, round);
        } catch {
          return; // the server is gone
        }
      }
    })();
    if (midWriteOf !== undefined) {
      const temporaries = path.join(folders()[midWriteOf], "tmp~");
      const deadline = Date.now() + 10_000;
      while (fs.readdirSync(temporaries).length === 0) {
        if (Date.now() > deadline) throw new Error(`no write into ${midWriteOf} began`);
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    }
    await new Promise((resolve) => setTimeout(resolve, afterMs));
    await kill();
    await loop;
  }

  /** The store's volumes and the pools' files agree, and no temporary is left. */
  async function expectAgreement(c: Clients): Promise<void> {
    for (const [pool, folder] of Object.entries(folders())) {
      const listed = (await c.volumes.listVolumes({ pool, pageSize: 1000 })).volumes;
      const files = filesUnder(folder);
      expect({ pool, temporaries: files.filter((file) => file.startsWith("tmp~")) }).toEqual({ pool, temporaries: [] });
      const suffix = pool === "images" ? ".qcow2" : ".img";
      const volumesOnDisk = files.filter((file) => file.endsWith(suffix)).map((file) => file.slice(0, -suffix.length));
      // A VM's volume that each start makes anew has no file until its first start.
      const madeAtStart = (volume: (typeof listed)[number]) => volume.vm !== "" && (volume.snapOnStart || !volume.saveOnStop);
      const needed = listed.filter((volume) => !madeAtStart(volume)).map((volume) => volume.vid);
      const kept = volumesOnDisk.filter((vid) => needed.includes(vid) || listed.some((volume) => volume.vid === vid && madeAtStart(volume)));
      expect({ pool, volumes: kept }).toEqual({ pool, volumes: volumesOnDisk });
      expect({ pool, missing: needed.filter((vid) => !volumesOnDisk.includes(vid)) }).toEqual({ pool, missing: [] });
      const orphans = files.filter((file) => /\.[0-9]+~$/.test(file) && !listed.some((volume) => file.startsWith(`${volume.vid}${suffix}.`)));
      expect({ pool, orphanRevisions: orphans }).toEqual({ pool, orphanRevisions: [] });
      for (const volume of listed) {
        const revisions = (await c.volumes.listSnapshots({ volume: { pool, vid: volume.vid, vm: "", name: "" } })).revisions.map((r) => r.revision).sort();
        const revisionFiles = files.filter((file) => file.startsWith(`${volume.vid}${suffix}.`) && /\.[0-9]+~$/.test(file)).map((file) => /\.([0-9]+)~$/.exec(file)![1]).sort();
        expect({ vid: volume.vid, revisions }).toEqual({ vid: volume.vid, revisions: revisionFiles });
      }
    }
  }

  const ref = (vid: string, pool = "default") => ({ pool, vid, vm: "", name: "" });
  const shaOf = async (c: Clients, volume: ReturnType<typeof ref>, revision = "") => rebuild(await collect(c.volumes.exportVolume({ volume, revision }))).trailer.sha256;

  beforeEach(async () => {
    dir = makeTempDir("steward-storage-crash-");
    const c = await start();
    await c.pools.addPool({ name: "images", driver: "qcow2", parameters: { dir_path: folders().images } });
    for (const pool of ["default", "images"]) {
      await c.volumes.createVolume({ pool, vid: "disk", sizeBytes: BigInt(CONTENT_BYTES) });
      await c.volumes.importVolume(importStream(ref("disk", pool), CONTENTS[0]));
    }
  });

  afterEach(async () => {
    await kill();
    removeDir(dir);
  });

  it.each([0, 40])("leaves an import's old content or its new one, killed %i ms into a write", async (afterMs) => {
    await killDuring(
      afterMs,
      (c, round) => Promise.all(["default", "images"].map((pool) => c.volumes.importVolume(importStream(ref("disk", pool), CONTENTS[(round + 1) % 2], { sha256: SHAS[(round + 1) % 2] })))),
      "default",
    );
    const c = await start();
    await expectAgreement(c);
    for (const pool of ["default", "images"]) expect(SHAS).toContain(await shaOf(c, ref("disk", pool)));
  });

  it.each([0, 30])("leaves a clone's target as it was or a whole copy, killed %i ms into a write", async (afterMs) => {
    await clients!.volumes.createVolume({ pool: "images", vid: "copy", sizeBytes: BigInt(CONTENT_BYTES) });
    await clients!.volumes.importVolume(importStream(ref("copy", "images"), CONTENTS[1]));
    await killDuring(afterMs, async (c) => {
      const op = await c.volumes.cloneVolume({ source: ref("disk"), target: ref("copy", "images") });
      if (!op.done) await new Promise(() => undefined); // the kill ends it
    }, "images");
    const c = await start();
    await expectAgreement(c);
    expect(SHAS).toContain(await shaOf(c, ref("copy", "images")));
  });

  it.each([0, 20])("keeps whole revisions or none, through snapshots and reverts, killed %i ms into a write", async (afterMs) => {
    await clients!.volumes.setVolumeProperty({ volume: ref("disk"), property: { case: "revisionsToKeep", value: 3 } });
    await killDuring(afterMs, async (c, round) => {
      await c.volumes.snapshotVolume({ volume: ref("disk") });
      await c.volumes.importVolume(importStream(ref("disk"), CONTENTS[(round + 1) % 2]));
      await c.volumes.revertVolume({ volume: ref("disk") });
    }, "default");
    const c = await start();
    await expectAgreement(c);
    expect(SHAS).toContain(await shaOf(c, ref("disk")));
    for (const revision of (await c.volumes.listSnapshots({ volume: ref("disk") })).revisions) expect(SHAS).toContain(await shaOf(c, ref("disk"), revision.revision));
  });

  it.each([0, 40])("makes a TemplateVM of an import whole or not at all, and a volume a new VM takes is its or still the pool's, killed %i ms into a write", async (afterMs) => {
    await killDuring(
      afterMs,
      async (c, round) => {
        await c.volumes.createVolume({ pool: "images", vid: `free/v${round}`, sizeBytes: BigInt(MiB) });
        await Promise.all([
          c.volumes.importVolume(templateStream({ name: `tpl${round}`, klass: VmClass.TEMPLATE_VM, label: "black" }, CONTENTS[round % 2], { sha256: SHAS[round % 2] })),
          c.vms.createVm({ name: `taker${round}`, klass: VmClass.STANDALONE_VM, label: "red", volumes: { private: { source: { case: "existing", value: ref(`free/v${round}`, "images") } } } }),
        ]);
      },
      "default",
    );
    const c = await start();
    await expectAgreement(c);
    const vms = new Set((await c.vms.listVms({ pageSize: 1000 })).vms.map((vm) => vm.name));
    for (const name of vms) {
      if (name.startsWith("tpl")) expect(SHAS).toContain(await shaOf(c, { pool: "", vid: "", vm: name, name: "root" }));
    }
    for (const volume of (await c.volumes.listVolumes({ pool: "images", pageSize: 1000 })).volumes.filter((v) => v.vid.startsWith("free/"))) {
      const taker = `taker${volume.vid.slice("free/v".length)}`;
      expect({ vid: volume.vid, owner: volume.vm, name: volume.name }).toEqual(vms.has(taker) ? { vid: volume.vid, owner: taker, name: "private" } : { vid: volume.vid, owner: "", name: "" });
    }
  });

  it.each([30, 150])("leaves each volume made, or none of it, and each VM with all its volumes or gone with them, killed %i ms in", async (afterMs) => {
    await killDuring(afterMs, async (c, round) => {
      await c.volumes.createVolume({ pool: round % 2 === 0 ? "default" : "images", vid: `made/v${round}`, sizeBytes: BigInt(MiB) });
      await c.vms.createVm({ name: `vm${round}`, klass: VmClass.STANDALONE_VM, label: "red", pool: round % 2 === 0 ? "images" : "default" });
      if (round % 3 === 2) await c.vms.removeVm({ vm: `vm${round - 1}` });
    });
    const c = await start();
    await expectAgreement(c);
    const vms = (await c.vms.listVms({ pageSize: 1000 })).vms.filter((vm) => vm.name !== "dom0");
    for (const vm of vms) {
      const own = (await c.volumes.listVolumes({ vm: vm.name, pageSize: 10 })).volumes.map((volume) => volume.name).sort();
      expect({ vm: vm.name, own }).toEqual({ vm: vm.name, own: ["private", "root", "volatile"] });
    }
    // Volumes of VMs that are not there are gone too: the agreement above saw every file, and here every record has a VM.
    const names = new Set(vms.map((vm) => vm.name));
    for (const pool of ["default", "images"]) {
      for (const volume of (await c.volumes.listVolumes({ pool, pageSize: 1000 })).volumes) if (volume.vm !== "") expect(names.has(volume.vm)).toBe(true);
    }
  });
});
