import * as os from "node:os";
import type { Logger } from "pino";
import { BackupService } from "../gen/steward/v1/backup_service_pb";
import { BlockExportService } from "../gen/steward/v1/block_export_service_pb";
import { DeviceService } from "../gen/steward/v1/device_service_pb";
import { EventService } from "../gen/steward/v1/event_service_pb";
import { FirewallService } from "../gen/steward/v1/firewall_service_pb";
import { HostService } from "../gen/steward/v1/host_service_pb";
import { PoolService } from "../gen/steward/v1/pool_service_pb";
import { VmService } from "../gen/steward/v1/vm_service_pb";
import { VolumeService } from "../gen/steward/v1/volume_service_pb";
import { selectHypervisor } from "./adapters/hypervisor/select-hypervisor";
import { SqliteStore } from "./adapters/store/sqlite/sqlite-store";
import { backupApi } from "./api/backup-api";
import { blockExportApi } from "./api/block-export-api";
import { deviceApi } from "./api/device-api";
import { eventApi } from "./api/event-api";
import { firewallApi } from "./api/firewall-api";
import { hostApi } from "./api/host-api";
import { notYetImplemented } from "./api/not-implemented";
import { poolApi } from "./api/pool-api";
import { volumeApi } from "./api/volume-api";
import { vmApi } from "./api/vm-api";
import type { Config } from "./config";
import { EventHub } from "./core/event-hub";
import { HostInfoReader } from "./core/host-info";
import { Labels } from "./core/labels";
import { GlobalProperties } from "./core/properties/global-properties";
import { PropertyResolver } from "./core/properties/property-resolver";
import { VmProperties } from "./core/properties/vm-properties";
import { VmFeatures } from "./core/vm-features";
import { VmLifecycle } from "./core/vm-lifecycle";
import { VmLookup } from "./core/vm-lookup";
import { VmNotes } from "./core/vm-notes";
import { VmRegistry } from "./core/vm-registry";
import { VmTags } from "./core/vm-tags";
import { systemClock } from "./ports/clock";
import type { Store } from "./ports/store";
import { binding, StewardServer, type ServiceBinding } from "./server/steward-server";
import { STEWARD_VERSION } from "./version";

/**
 * The composition root: opens the state, picks the hypervisor, builds the core and the API
 * on them, and serves it. Adapters are chosen here and nowhere else.
 */
export class StewardApp {
  private constructor(
    private readonly store: Store,
    readonly server: StewardServer,
  ) {}

  /** Opens the data folder (refusing one another server holds), then listens. */
  static async start(config: Config, log: Logger): Promise<StewardApp> {
    const store = SqliteStore.open(config.dataDir);
    try {
      const hypervisor = selectHypervisor(config.hypervisor, log);
      const reader = new HostInfoReader(store, hypervisor, systemClock, { version: STEWARD_VERSION, hostname: os.hostname() });
      const events = new EventHub(store, systemClock, config.events);
      const labels = new Labels(store, systemClock);
      const lookup = new VmLookup(store);
      const resolver = new PropertyResolver(store, hypervisor);
      const properties = new VmProperties(store, lookup, resolver, hypervisor, systemClock);
      const globals = new GlobalProperties(store, resolver, systemClock);
      const vms = new VmRegistry(store, lookup, hypervisor, labels, properties, resolver, systemClock);
      const vmParts = {
        vms,
        lifecycle: new VmLifecycle(store, lookup, hypervisor, resolver, vms, systemClock),
        properties,
        tags: new VmTags(store, lookup, systemClock),
        features: new VmFeatures(store, lookup, systemClock),
        notes: new VmNotes(store, lookup),
      };
      const services: ServiceBinding[] = [];
      let features: readonly string[] | undefined;
      const apiFeatures = () => (features ??= implementedRpcs(services));
      services.push(
        binding(HostService, hostApi(reader, labels, globals, apiFeatures)),
        binding(VmService, vmApi(vmParts)),
        binding(PoolService, poolApi()),
        binding(VolumeService, volumeApi()),
        binding(BlockExportService, blockExportApi()),
        binding(FirewallService, firewallApi()),
        binding(DeviceService, deviceApi()),
        binding(EventService, eventApi(events, lookup)),
        binding(BackupService, backupApi()),
      );
      const server = new StewardServer(config, services, log);
      await server.listen();
      log.info({ version: STEWARD_VERSION, dataDir: config.dataDir, hypervisor: hypervisor.info().kind }, "started");
      return new StewardApp(store, server);
    } catch (error) {
      store.close();
      throw error;
    }
  }

  async stop(): Promise<void> {
    await this.server.stop();
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
