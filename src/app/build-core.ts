import type { VmRecord } from "../core/model/vm-record";
import { HmacSigner } from "../adapters/crypto/hmac-signer";
import { nodeDigests } from "../adapters/crypto/node-digests";
import type { BlockExporter, NbdCredentials } from "../ports/block-exporter";
import type { Clock } from "../ports/clock";
import type { Hypervisor } from "../ports/hypervisor";
import type { Log } from "../ports/log";
import type { StorageDriverCatalog } from "../ports/storage-driver";
import type { Store } from "../ports/store";
import type { EventSettings } from "../core/events/event-hub";
import { EventHub } from "../core/events/event-hub";
import { EventLog } from "../core/events/event-log";
import { GlobalProperties } from "../core/host/global-properties";
import { HostInfoReader, type HostFacts } from "../core/host/host-info";
import { HaltWaiters } from "../core/lifecycle/halt-waiters";
import { PowerMachine } from "../core/lifecycle/power-machine";
import { RunningVms } from "../core/lifecycle/running-vms";
import { VmConsoles } from "../core/lifecycle/vm-console";
import { VmGuestFacts } from "../core/lifecycle/vm-guest-facts";
import { VmStatsReader } from "../core/lifecycle/vm-stats";
import { VmPause } from "../core/lifecycle/vm-pause";
import { VmStart } from "../core/lifecycle/vm-start";
import { VmStop } from "../core/lifecycle/vm-stop";
import { BlockExports } from "../core/exports/block-exports";
import { volumeNotExportable } from "../core/exports/export-errors";
import { Operations } from "../core/operations/operations";
import { PageTokens } from "../core/shared/page-token";
import { Pools, type DefaultPool } from "../core/storage/pools";
import { VmVolumes } from "../core/storage/vm-volumes";
import type { ImageFolder } from "../ports/image-folder";
import type { KernelFolder } from "../ports/kernel-folder";
import { KernelVolumes } from "../core/storage/kernel-volumes";
import { imageNotFound } from "../ports/storage-errors";
import { VolumeAttachments } from "../core/storage/volume-attachments";
import { VolumeImages } from "../core/storage/volume-images";
import { Volumes } from "../core/storage/volumes";
import { RequestLedger } from "../core/shared/request-ledger";
import { DisposableCleanup } from "../core/vms/disposable-cleanup";
import { EventSubjects } from "../core/vms/event-subjects";
import { Labels } from "../core/vms/labels";
import { NewVms } from "../core/vms/new-vms";
import { PowerStates } from "../core/vms/power-states";
import { PropertyResolver } from "../core/vms/properties/property-resolver";
import { VmProperties } from "../core/vms/properties/vm-properties";
import { VmReadModel } from "../core/vms/read-model/vm-read-model";
import { VmCloning } from "../core/vms/vm-cloning";
import { VmCreation } from "../core/vms/vm-creation";
import { VmFeatures } from "../core/vms/vm-features";
import { VmLookup } from "../core/vms/vm-lookup";
import { VmNotes } from "../core/vms/vm-notes";
import type { RandomBelow } from "../core/vms/dispids";
import { VmOperations } from "../core/vms/vm-operations";
import { VmParticipants, type VmParticipant } from "../core/vms/vm-participant";
import { VmRemoval } from "../core/vms/vm-removal";
import { VmRenaming } from "../core/vms/vm-renaming";
import { VmTags } from "../core/vms/vm-tags";

/** An images folder without images, for a core built without one. */
const NO_IMAGES: ImageFolder = {
  open: async (file) => {
    throw imageNotFound(file);
  },
};

/** A kernel folder without kernels. */
const NO_KERNELS: KernelFolder = {
  location: "",
  modulesImage: async () => undefined,
  kernels: async () => [],
  openModules: async () => undefined,
  room: async () => undefined,
};

/** No NBD credentials: a TLS server is refused for want of them. */
const NO_CREDENTIALS: NbdCredentials = { folder: async () => undefined, expected: (name) => `(no credentials folder) ${name}` };

/** The ports the core is built on. */
export interface CorePorts {
  store: Store;
  hypervisor: Hypervisor;
  clock: Clock;
  log: Log;
  /** Where DispVM numbers are drawn from; the system's randomness unless a test scripts it. */
  random?: RandomBelow;
  /** The pool drivers AddPool may use; none when absent (tests of other areas). */
  storage?: StorageDriverCatalog;
  /** Steward's images folder, which CreateVm's images come from; an empty one when absent. */
  images?: ImageFolder;
  /** Steward's kernel folder, whose kernels' modules are the VMs' kernel volumes; an empty one when absent. */
  kernels?: KernelFolder;
  /** What serves block exports; none when absent (BlockExportService refuses every export). */
  exporter?: BlockExporter;
  /** The NBD server's TLS credentials; none when absent. */
  nbdCredentials?: NbdCredentials;
}

export interface CoreSettings {
  events: EventSettings;
  host: HostFacts;
  /**
   * The areas that join a VM's life (storage, network, devices, as their issues add them), in
   * the order their hooks run; the disposables come after them.
   */
  participants?: (core: { resolver: PropertyResolver; powerStates: PowerStates }) => VmParticipant[];
  /** The pool a first start makes; none when absent. */
  defaultPool?: DefaultPool;
  /** Below this share of its size left (percent), a pool tells pool-space-low; DEFAULT_SPACE_LOW_PERCENT when absent. */
  poolSpaceLowPercent?: number;
}

/** The core's objects, as the API modules call them. */
export type Core = ReturnType<typeof buildCore>;

/**
 * Builds the core on its ports: the one object graph the server and the tests use. The areas
 * that join a VM's life are listed in the order their hooks run: those of the settings, then
 * the disposables, which go last (a DispVM is removed once everything else has settled it).
 */
export function buildCore(ports: CorePorts, settings: CoreSettings) {
  const { store, hypervisor, clock, log, random, storage } = ports;
  const events = new EventLog(store, clock);
  const lookup = new VmLookup(store);
  const operations = new VmOperations(lookup);
  const ledger = new RequestLedger(store, clock);
  const powerStates = new PowerStates();
  const participants = new VmParticipants(log);
  const resolver = new PropertyResolver(store, powerStates);
  const labels = new Labels(store, events, ledger);
  const properties = new VmProperties(store, lookup, resolver, powerStates, operations, events);
  const pageTokens = new PageTokens(new HmacSigner(store.host().secret));
  const readModel = new VmReadModel(store, lookup, powerStates, properties, resolver, pageTokens);
  const newVms = new NewVms(store, readModel, participants, ledger, events, clock);
  const removal = new VmRemoval(store, readModel, powerStates, operations, participants, events);
  const machine = new PowerMachine(powerStates, events);
  const halts = new HaltWaiters();
  const running = new RunningVms(store, machine, operations, participants, halts, log);
  const kernelVolumes = new KernelVolumes(ports.kernels ?? NO_KERNELS, resolver);
  // The linux-kernel pool is there with a kernel folder.
  const pools = new Pools(store, storage, events, ledger, clock, log, settings.poolSpaceLowPercent, ports.kernels ? [kernelVolumes] : []);
  const volumes = new Volumes(store, pools, events, ledger, clock, log, lookup, operations, powerStates, nodeDigests, ports.kernels ? kernelVolumes : undefined);
  const runningDisks = { isRunning: (vm: VmRecord) => running.handle(vm.uuid) !== undefined, hotPlug: (vm: VmRecord) => running.capability(vm, "hotPlug") };
  const attachments = new VolumeAttachments(store, volumes, pools, operations, runningDisks, events);
  // Storage first (the others may need the disks), the disposables last.
  const storageParticipant = storage ? [new VmVolumes(store, pools, volumes, resolver, clock, attachments, ports.images ?? NO_IMAGES, kernelVolumes)] : [];
  participants.enlist([...storageParticipant, ...(settings.participants?.({ resolver, powerStates }) ?? []), new DisposableCleanup(resolver, removal)]);
  const eventHub = new EventHub(store, clock, settings.events);
  const volumeImages = new VolumeImages(store, pools, volumes, (uuid) => running.handle(uuid) !== undefined, volumeNotExportable);
  const blockExports = new BlockExports(store, ports.exporter, volumeImages, ports.nbdCredentials ?? NO_CREDENTIALS, events, ledger, clock, log);
  const stopping = new VmStop(store, lookup, resolver, operations, machine, running, halts, log);
  const core = {
    store,
    hypervisor,
    hostInfo: new HostInfoReader(store, hypervisor.info(), clock, settings.host, blockExports.types()),
    eventHub,
    eventSubjects: new EventSubjects(lookup, eventHub),
    labels,
    globals: new GlobalProperties(store, resolver, events, powerStates),
    lookup,
    /** One operation per VM at a time: the queue every mutation of a VM waits in. */
    vmOperations: operations,
    /** Long work, as operations (AIP-151). */
    operations: new Operations(store, events, ledger, clock, log, pageTokens),
    pageTokens,
    readModel,
    creation: new VmCreation(store, lookup, labels, properties, resolver, operations, participants, newVms, random),
    cloning: new VmCloning(store, lookup, resolver, powerStates, operations, participants, newVms),
    removal,
    renaming: new VmRenaming(store, readModel, powerStates, operations, events),
    starting: new VmStart(store, lookup, hypervisor, resolver, operations, participants, machine, running, halts),
    stopping,
    pausing: new VmPause(lookup, operations, machine, running),
    consoles: new VmConsoles(lookup, running),
    guestFacts: new VmGuestFacts(lookup, machine, running),
    stats: new VmStatsReader(store, lookup, machine, running, resolver, halts, log),
    running,
    properties,
    tags: new VmTags(store, lookup, operations, events),
    features: new VmFeatures(store, lookup, resolver, operations, events),
    notes: new VmNotes(store, lookup, operations, events),
    pools,
    volumes,
    attachments,
    blockExports,
    /**
     * Ends the operations the last Steward left running, opens the pools (making the default
     * one at the first start) and takes over the VMs the hypervisor finds running; call once,
     * before serving.
     */
    adopt: async () => {
      core.operations.endInterrupted();
      await core.pools.open(settings.defaultPool);
      await core.volumes.settle();
      await running.adopt(hypervisor);
      await blockExports.adopt();
    },
    /**
     * Once serving has stopped: stops the running operations (they undo their work and end as
     * interrupted), then lets go of the running VMs, leaving them running.
     */
    release: async () => {
      await core.operations.stop();
      stopping.release();
      await ports.exporter?.release();
      return hypervisor.release();
    },
  };
  return core;
}