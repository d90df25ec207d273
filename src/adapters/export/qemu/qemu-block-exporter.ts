/**
 * Block exports through QEMU: Steward's qemu-storage-daemon, in `<data-dir>/exports`, with the
 * sockets and FUSE mount points of its exports beside it.
 */
import { execFile } from "node:child_process";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { BLOCK_EXPORT_TYPES, type BlockExporter, type BlockExportType, type ExportEndpoint, type ExportServer } from "../../../ports/block-exporter";
import { QmpExportServer } from "./qmp-export-server";
import { daemonFilesIn, findDaemon, startDaemon, type DaemonFiles } from "./storage-daemon";
import type { QmpClient } from "../../hypervisor/qemu/qmp/qmp-client";

export interface QemuBlockExporterSettings {
  /** The folder of the daemon and its exports' endpoints. */
  dir: string;
  /** The qemu-storage-daemon to run. */
  binary?: string;
}

/** The daemon Steward drives; `fresh` when this Steward started it, `told` once the core has heard so. */
interface LiveDaemon {
  server: ExportServer;
  qmp: QmpClient;
  fresh: boolean;
  told: boolean;
}

const ENDPOINT_FOLDERS: Record<ExportEndpoint, string> = { "nbd-socket": "nbd", "vhost-user-blk-socket": "vhost-user-blk", "fuse-mountpoint": "fuse" };

export class QemuBlockExporter implements BlockExporter {
  private readonly binary: string;
  private readonly files: DaemonFiles;
  private live: LiveDaemon | undefined;
  private opening: Promise<LiveDaemon> | undefined;

  private constructor(
    private readonly dir: string,
    binary: string,
    readonly types: readonly BlockExportType[],
  ) {
    this.binary = binary;
    this.files = daemonFilesIn(path.join(dir, "daemon"));
  }

  /** An exporter of the types this host's qemu-storage-daemon was built with; undefined when it has none. */
  static async probe(settings: QemuBlockExporterSettings): Promise<QemuBlockExporter | undefined> {
    const binary = settings.binary ?? "qemu-storage-daemon";
    const types = await (probed.get(binary) ?? probed.set(binary, supportedTypes(binary)).get(binary)!);
    return types.length === 0 ? undefined : new QemuBlockExporter(settings.dir, binary, types);
  }

  endpointPath(kind: ExportEndpoint, name: string): string {
    return path.join(this.dir, ENDPOINT_FOLDERS[kind], name);
  }

  async daemon(): Promise<{ server: ExportServer; fresh: boolean }> {
    let live = this.live;
    if (live === undefined) {
      this.opening ??= this.open().finally(() => (this.opening = undefined));
      live = await this.opening;
    }
    const fresh = live.fresh && !live.told;
    live.told = true;
    return { server: live.server, fresh };
  }

  async release(): Promise<void> {
    const live = this.live ?? (await this.opening?.catch(() => undefined));
    this.live = undefined;
    live?.qmp.close();
  }

  /** The daemon left running by an earlier Steward, else a new one. */
  private async open(): Promise<LiveDaemon> {
    const found = await findDaemon(this.files);
    const running = found ?? (await startDaemon(this.binary, this.files));
    await Promise.all(Object.values(ENDPOINT_FOLDERS).map((folder) => fsp.mkdir(path.join(this.dir, folder), { recursive: true, mode: 0o700 })));
    const live: LiveDaemon = { server: new QmpExportServer(running.qmp, running.pid), qmp: running.qmp, fresh: found === undefined, told: false };
    // A daemon that ends is started anew at the next call, which tells the core it is new.
    running.qmp.onClose(() => {
      if (this.live === live) this.live = undefined;
    });
    this.live = live;
    return live;
  }
}

/** What each binary was found to export, probed once per process (a build does not change under it). */
const probed = new Map<string, Promise<BlockExportType[]>>();

/**
 * The export types this qemu-storage-daemon knows: QAPI leaves out those its build lacks, so an
 * export of a type it lacks is refused by name, and one it has fails only on the missing node.
 */
async function supportedTypes(binary: string): Promise<BlockExportType[]> {
  const known = await Promise.all(
    BLOCK_EXPORT_TYPES.map(
      (type) =>
        new Promise<boolean>((resolve) => {
          execFile(binary, ["--export", `type=${type},id=probe,node-name=probe`], { timeout: 10_000 }, (error, stdout, stderr) => {
            const said = `${stdout}${stderr}`;
            resolve(error !== null && (error as NodeJS.ErrnoException).code !== "ENOENT" && !said.includes("does not accept value") && said.includes("probe"));
          });
        }),
    ),
  );
  return BLOCK_EXPORT_TYPES.filter((_type, index) => known[index]);
}
