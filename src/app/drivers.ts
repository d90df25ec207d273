import type { Logger } from "pino";
import { selectHypervisor } from "../adapters/hypervisor/select-hypervisor";
import { STORAGE_DRIVERS, StorageDriverRegistry } from "../adapters/storage/storage-drivers";
import type { Config } from "../config";
import type { Hypervisor } from "../ports/hypervisor";
import type { StorageDriverCatalog } from "../ports/storage-driver";

/**
 * Which adapters this host runs on: the hypervisor the configuration asks for (or finds), and
 * the storage drivers pools may use. Each later area (firewall, devices, block exports) names
 * its implementation here, and nowhere else.
 */
export function hypervisorFor(config: Config, log: Logger): Hypervisor {
  return selectHypervisor(config.hypervisor, log);
}

/** The pool drivers, for AddPool and ListPoolDrivers (the storage issue wires them in). */
export function storageDrivers(): StorageDriverCatalog {
  return new StorageDriverRegistry(STORAGE_DRIVERS);
}
