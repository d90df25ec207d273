import * as path from "node:path";
import type { Logger } from "pino";
import { FolderNbdCredentials } from "../adapters/export/qemu/nbd-credentials";
import { QemuBlockExporter } from "../adapters/export/qemu/qemu-block-exporter";
import { selectHypervisor } from "../adapters/hypervisor/select-hypervisor";
import { STORAGE_DRIVERS, StorageDriverRegistry } from "../adapters/storage/storage-drivers";
import type { Config } from "../config";
import type { BlockExporter, NbdCredentials } from "../ports/block-exporter";
import type { Hypervisor } from "../ports/hypervisor";
import { DEFAULT_POOL } from "../core/model/pool";
import type { DefaultPool } from "../core/storage/pools";
import type { StorageDriverCatalog } from "../ports/storage-driver";

/**
 * Which adapters this host runs on: the hypervisor the configuration asks for (or finds), and
 * the storage drivers pools may use. Each later area (firewall, devices, block exports) names
 * its implementation here, and nowhere else.
 */
export function hypervisorFor(config: Config, log: Logger): Hypervisor {
  return selectHypervisor(config.hypervisor, log, {
    runDir: path.join(config.dataDir, "qemu"),
    kernelsDir: kernelsFolder(config),
    // As root, QEMU runs as a user of its own; otherwise as Steward's user, which is unprivileged already.
    user: process.getuid?.() === 0 ? config.qemuUser : undefined,
  });
}

/**
 * What serves block exports: Steward's qemu-storage-daemon, in `<data-dir>/exports`, where
 * qemu-storage-daemon is installed; none elsewhere (BlockExportService then refuses exports).
 */
export async function blockExporter(config: Config, log: Logger): Promise<BlockExporter | undefined> {
  const exporter = await QemuBlockExporter.probe({ dir: path.join(config.dataDir, "exports") });
  log.info({ types: exporter?.types ?? [] }, exporter ? "block exports are served by qemu-storage-daemon" : "qemu-storage-daemon is not installed: no block exports");
  return exporter;
}

/** The NBD server's TLS credentials: `<data-dir>/nbd-tls/<name>`, and Steward's own mTLS files. */
export function nbdCredentials(config: Config): NbdCredentials {
  const tls = config.tls;
  const own = tls?.clientCaFile ? { certFile: tls.certFile, keyFile: tls.keyFile, clientCaFile: tls.clientCaFile } : undefined;
  return new FolderNbdCredentials(path.join(config.dataDir, "nbd-tls"), own);
}

/** The host's kernel folder (Qubes' vm-kernels): a folder per kernel, with vmlinuz, initramfs and modules.img. */
export function kernelsFolder(config: Config): string {
  return path.join(config.dataDir, "kernels");
}

/** Where pools in Steward's own folder go: the default pool, and others a user puts there. */
export function poolsFolder(config: Config): string {
  return path.join(config.dataDir, "pools");
}

/** The pool drivers, for AddPool and ListPoolDrivers; no pool may hold Steward's own files. */
export function storageDrivers(config: Config): StorageDriverCatalog {
  return new StorageDriverRegistry(STORAGE_DRIVERS, { dataDir: config.dataDir, poolsDir: poolsFolder(config) });
}

/**
 * The pool a first start makes (Qubes' varlibqubes): in the data folder, of file-reflink where
 * its filesystem can reflink, else of file.
 */
export function defaultPool(config: Config): DefaultPool {
  const parameters = { dir_path: path.join(poolsFolder(config), DEFAULT_POOL) };
  return { name: DEFAULT_POOL, choices: [{ driver: "file-reflink", parameters }, { driver: "file", parameters }] };
}
