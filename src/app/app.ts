import * as os from "node:os";
import * as path from "node:path";
import type { Logger } from "pino";
import { Operations } from "../../gen/google/longrunning/operations_pb";
import { OperationService } from "../../gen/steward/v1/operation_service_pb";
import { BackupService } from "../../gen/steward/v1/backup_service_pb";
import { BlockExportService } from "../../gen/steward/v1/block_export_service_pb";
import { DeviceService } from "../../gen/steward/v1/device_service_pb";
import { EventService } from "../../gen/steward/v1/event_service_pb";
import { FirewallService } from "../../gen/steward/v1/firewall_service_pb";
import { HostService } from "../../gen/steward/v1/host_service_pb";
import { PoolService } from "../../gen/steward/v1/pool_service_pb";
import { VmService } from "../../gen/steward/v1/vm_service_pb";
import { VolumeService } from "../../gen/steward/v1/volume_service_pb";
import { FileImageFolder } from "../adapters/storage/images/file-image-folder";
import { FileKernelFolder } from "../adapters/storage/kernels/file-kernel-folder";
import { SqliteStore } from "../adapters/store/sqlite/sqlite-store";
import { backupApi } from "../api/backup/backup-api";
import { operationApi } from "../api/operations/operation-api";
import { deviceApi } from "../api/devices/device-api";
import { eventApi } from "../api/events/event-api";
import { blockExportApi } from "../api/exports/block-export-api";
import { hostApi } from "../api/host/host-api";
import { firewallApi } from "../api/network/firewall-api";
import { notYetImplemented } from "../api/not-implemented";
import { poolApi } from "../api/storage/pool-api";
import { volumeApi } from "../api/storage/volume-api";
import { vmApi } from "../api/vms/vm-api";
import type { Config } from "../config";
import { systemClock } from "../ports/clock";
import type { Store } from "../ports/store";
import { binding, StewardServer, type ServiceBinding } from "../server/steward-server";
import { STEWARD_VERSION } from "../version";
import { buildCore, type Core, type CoreSettings } from "./build-core";
import { blockExporter, defaultPool, hypervisorFor, kernelsFolder, nbdCredentials, storageDrivers } from "./drivers";

/** What a page holds besides its VMs (its token, its total), with room to spare. */
const PAGE_HEADROOM_BYTES = 16 * 1024;

/**
 * The composition root: opens the state, picks the hypervisor, builds the core and the API
 * on them, and serves it. Adapters are chosen here and nowhere else.
 */
export class StewardApp {
  private constructor(
    private readonly store: Store,
    private readonly core: Core,
    readonly server: StewardServer,
  ) {}

  /**
   * Opens the data folder (refusing one another server holds), then listens. `participants`
   * adds areas that join the VMs' lives (as the storage and network areas will).
   */
  static async start(config: Config, log: Logger, participants?: CoreSettings["participants"]): Promise<StewardApp> {
    const store = SqliteStore.open(config.dataDir, () => systemClock.now());
    try {
      const hypervisor = hypervisorFor(config, log);
      const images = new FileImageFolder(path.join(config.dataDir, "images"));
      await images.make();
      const kernels = new FileKernelFolder(kernelsFolder(config));
      await kernels.make();
      const core = buildCore(
        { store, hypervisor, clock: systemClock, log, storage: storageDrivers(config), images, kernels, exporter: await blockExporter(config, log), nbdCredentials: nbdCredentials(config) },
        { events: config.events, host: { version: STEWARD_VERSION, hostname: os.hostname() }, participants, defaultPool: defaultPool(config), poolSpaceLowPercent: config.poolSpaceLowPercent },
      );
      await core.adopt();
      const services: ServiceBinding[] = [];
      let features: readonly string[] | undefined;
      const apiFeatures = () => (features ??= implementedRpcs(services));
      services.push(
        binding(HostService, hostApi(core, apiFeatures)),
        binding(VmService, vmApi(core, { pageBytes: config.maxMessageBytes - PAGE_HEADROOM_BYTES })),
        binding(PoolService, poolApi(core)),
        binding(VolumeService, volumeApi(core)),
        binding(BlockExportService, blockExportApi({ exports: core.blockExports, pageTokens: core.pageTokens })),
        binding(FirewallService, firewallApi()),
        binding(DeviceService, deviceApi()),
        binding(EventService, eventApi(core)),
        binding(BackupService, backupApi()),
        binding(OperationService, operationApi(core.operations)),
        // The same handlers under google.longrunning's own name, for generic LRO clients.
        binding(Operations, operationApi(core.operations)),
      );
      const server = new StewardServer(config, services, log, { durable: () => store.durable() });
      await server.listen();
      log.info({ version: STEWARD_VERSION, dataDir: config.dataDir, hypervisor: hypervisor.info().kind }, "started");
      return new StewardApp(store, core, server);
    } catch (error) {
      store.close();
      throw error;
    }
  }

  async stop(): Promise<void> {
    await this.server.stop();
    await this.core.release();
    this.store.close();
  }
}

/** `Service/Rpc` for every RPC whose handler is not notYetImplemented. */
export function implementedRpcs(services: readonly ServiceBinding[]): string[] {
  return services.flatMap(({ service, impl }) =>
    service.methods
      .filter((method) => (impl as Record<string, unknown>)[method.localName] !== notYetImplemented)
      .map((method) => `${service.typeName}/${method.name}`),
  );
}
