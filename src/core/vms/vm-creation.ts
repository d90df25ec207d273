import { vmClass, type VmClassName } from "../model/vm-classes";
import { draftRecord, type VmIdentity, type VmRecord } from "../model/vm-record";
import type { CallContext } from "../shared/call-context";
import { unreported, type ProgressReporter } from "../shared/progress";
import type { Labels } from "./labels";
import type { NewVms } from "./new-vms";
import { servesDispvms } from "./properties/property-checks";
import type { PropertyResolver } from "./properties/property-resolver";
import { globalSpec, MAX_DISPID, vmPropertySpecs, vmSpec, type PropertyValue } from "./properties/property-schema";
import { addressesOfDispid } from "./properties/vm-addresses";
import { chooseDispid, systemRandomBelow, type RandomBelow } from "./dispids";
import type { VmProperties } from "./properties/vm-properties";
import type { Vm } from "./read-model/vm-view";
import { invalidVmClass, invalidVolumeName, noDefaultDispvm, noFreeDispid, notADispvmTemplate, notATemplate, noTemplateGiven, poolConflict, poolNotFound } from "./vm-errors";
import type { VmLookup } from "./vm-lookup";
import { checkChosenUuid, checkVmName } from "./vm-names";
import type { VmOperations } from "./vm-operations";
import type { NewVolumeContent, VmParticipants, VolumePlacement } from "./vm-participant";
import type { Store } from "../../ports/store";

/** What a DispVM does not take from its AppVM: what names it, its addresses, and what is its own. */
const NOT_COPIED_TO_DISPVMS = new Set(["name", "uuid", "qid", "klass", "label", "template", "ip", "ip6", "mac", "start_time", "dispid", "auto_cleanup", "include_in_backups"]);

/** A DispVM's name, as Qubes gives it. */
function disposableName(dispid: number): string {
  return `disp${dispid}`;
}

export interface NewVm {
  name: string;
  klass: VmClassName | undefined;
  label: string;
  template: string;
  properties: Readonly<Record<string, PropertyValue>>;
  pool: string;
  volumePools: Readonly<Record<string, string>>;
  /** The uuid the client chose for it (machined's CreateMachine id); empty or absent for one Steward makes. */
  uuid?: string;
  /** What some of its own volumes are made from, by volume name; absent or empty for empty ones or its template's. */
  volumes?: Readonly<Record<string, NewVolumeContent>>;
}

export interface NewDisposableVm {
  /** The AppVM it is based on; empty for the global default_dispvm. */
  template: string;
  /** Its label; empty for its AppVM's. */
  label: string;
  idempotencyKey: string;
}

/** Making VMs (CreateVm) and DispVMs (CreateDisposableVm), with Qubes' rules. */
export class VmCreation {
  constructor(
    private readonly store: Store,
    private readonly lookup: VmLookup,
    private readonly labels: Labels,
    private readonly properties: VmProperties,
    private readonly resolver: PropertyResolver,
    private readonly operations: VmOperations,
    private readonly participants: VmParticipants,
    private readonly newVms: NewVms,
    private readonly randomBelow: RandomBelow = systemRandomBelow,
  ) {}

  /**
   * Makes the VM. As the work of an operation (`operation` given), its steps are told and a
   * cancellation undoes them. Retries are the operation's to answer (its request_id): this
   * makes a VM each time it is called.
   */
  async create(request: NewVm, ctx: CallContext, operation?: { progress: ProgressReporter }): Promise<Vm> {
    const { name, klass, chosenUuid } = this.parse(request);
    const identity = this.newVms.identity(chosenUuid);
    const placement = placementOf(request);
    // Volumes imported are long work: the operation counts their bytes, not the steps of the birth.
    const counted = importsBytes(request) ? operation?.progress : undefined;
    return this.newVms.make(
      () => this.draft(request, name, klass, identity),
      { rpc: "CreateVm", key: "", request, ctx, operation: counted ? { progress: unreported } : operation },
      this.participants.join("onCreate") ? (vm, revert) => this.participants.created(vm, ctx, revert, placement, counted) : undefined,
    );
  }

  /**
   * Makes a TemplateVM whose root is the bytes of an import stream (ImportVolume's
   * new_template): the VM is stored only once they all arrived and checked out. A retry with
   * the request_id of one that made its VM returns that VM, receiving nothing.
   */
  async createImported(request: NewVm, requestId: string, ctx: CallContext): Promise<Vm> {
    this.newVms.checkKey(requestId);
    const asked = withoutChunks(request);
    const earlier = this.newVms.earlier(requestId, "ImportVolume", asked);
    if (earlier) return earlier;
    await this.check(request);
    // Looked for again: a first request may have begun meanwhile (REQUEST_UNDER_WAY) or ended.
    const meanwhile = this.newVms.earlier(requestId, "ImportVolume", asked);
    if (meanwhile) return meanwhile;
    const { name, klass, chosenUuid } = this.parse(request);
    const identity = this.newVms.identity(chosenUuid);
    const placement = placementOf(request);
    return this.newVms.make(
      () => this.draft(request, name, klass, identity),
      { rpc: "ImportVolume", key: requestId, request: asked, ctx },
      this.participants.join("onCreate") ? (vm, revert) => this.participants.created(vm, ctx, revert, placement) : undefined,
    );
  }

  /**
   * Refuses a request that cannot make a VM as things stand now (a bad field, a name taken, a
   * missing template, a volume content its class does not take…), before any work begins: the
   * call fails, not an operation. What changes meanwhile is checked again as the VM is made.
   */
  async check(request: NewVm): Promise<void> {
    const { name, klass, chosenUuid } = this.parse(request);
    const draft = this.draft(request, name, klass, this.newVms.identity(chosenUuid));
    await this.participants.checkCreate(draft, placementOf(request));
  }

  private parse(request: NewVm): { name: string; klass: VmClassName; chosenUuid: string | undefined } {
    const name = checkVmName(request.name, "name");
    const klass = creatableClass(request.klass);
    const chosenUuid = checkChosenUuid(request.uuid ?? "", "uuid");
    checkPools(this.store, request.pool, request.volumePools);
    for (const volume of Object.keys(request.volumes ?? {})) if (!VOLUME_NAMES.includes(volume)) throw invalidVolumeName(`volumes[${volume}]`, volume, VOLUME_NAMES);
    return { name, klass, chosenUuid };
  }

  /**
   * Makes a DispVM from an AppVM with template_for_dispvms (or the global default_dispvm), named
   * disp<dispid>, removed when it halts (auto_cleanup). The AppVM is held meanwhile: the DispVM is a
   * copy of one state of it.
   */
  async createDisposable(request: NewDisposableVm, ctx: CallContext): Promise<Vm> {
    this.newVms.checkKey(request.idempotencyKey);
    const earlier = this.newVms.earlier(request.idempotencyKey, "CreateDisposableVm", asked(request));
    if (earlier) return earlier;
    return this.operations.on(request.template || this.defaultDispvm(), "template", ctx, "base a DispVM on it", (base) => {
      const again = this.newVms.earlier(request.idempotencyKey, "CreateDisposableVm", asked(request));
      if (again) return again;
      const identity = this.newVms.identity();
      // Chosen once: the participants know the DispVM by its name.
      const dispid = this.newDispid();
      return this.newVms.make(
        () => this.draftDisposable(request, base, dispid, identity),
        { rpc: "CreateDisposableVm", key: request.idempotencyKey, request: asked(request), ctx },
        this.participants.join("onCreate") ? (vm, revert) => this.participants.created(vm, ctx, revert) : undefined,
        (qid) => this.newVms.copyFeaturesAndTags(base.qid, qid),
      );
    });
  }

  private draft(request: NewVm, name: string, klass: VmClassName, identity: VmIdentity): VmRecord {
    this.newVms.requireFreeName(name);
    if (request.uuid) this.newVms.requireFreeUuid(identity.uuid);
    const label = this.labels.get(request.label, "label");
    const template = templateFor(this.store, this.lookup, this.resolver, klass, request.template);
    const properties: Record<string, string> = { label: label.name };
    if (template && vmClass(klass).templateClass) properties.template = String(template.qid);
    return this.properties.atCreation(draftRecord(identity, name, klass, properties), request.properties);
  }

  /**
   * A DispVM is a copy of its AppVM as Qubes makes one: the properties the AppVM sets (its
   * netvm, none included, its default_dispvm…), its label unless the request names one; an
   * AppVM offline by default makes an offline DispVM. Not its addresses (they come from the
   * dispid) nor what is the DispVM's own.
   */
  private draftDisposable(request: NewDisposableVm, held: VmRecord, dispid: number, identity: VmIdentity): VmRecord {
    const name = disposableName(dispid);
    this.newVms.requireFreeName(name);
    const base = this.lookup.resolve(`uuid:${held.uuid}`, "template");
    if (!servesDispvms(this.resolver, base)) throw notADispvmTemplate(base);
    const properties: Record<string, string> = {};
    for (const spec of vmPropertySpecs("DispVM")) {
      const value = base.properties[spec.name];
      if (value !== undefined && !NOT_COPIED_TO_DISPVMS.has(spec.name)) properties[spec.name] = value;
    }
    if (properties.netvm === undefined && !this.resolver.netvmOf(base)) properties.netvm = "";
    properties.label = request.label ? this.labels.get(request.label, "label").name : (this.resolver.vm(base, vmSpec("label")).value as string);
    properties.template = String(base.qid);
    properties.auto_cleanup = "1";
    properties.dispid = String(dispid);
    return draftRecord(identity, name, "DispVM", properties);
  }

  /** A dispid no VM has, whose name no VM has and no retained event tells of, and whose addresses no VM set. */
  private newDispid(): number {
    const dispid = chooseDispid(this.dispidTaken, this.randomBelow);
    if (dispid === undefined) throw noFreeDispid(MAX_DISPID);
    return dispid;
  }

  private readonly dispidTaken = (dispid: number): boolean => {
    const name = disposableName(dispid);
    if (this.store.vms.byNameAnyCase(name) || this.newVms.isNameReserved(name) || this.store.events.namesSubject(name) || this.store.vms.anySets("dispid", String(dispid))) return true;
    const addresses = addressesOfDispid(dispid);
    return this.store.vms.anySets("ip", addresses.ip) || this.store.vms.anySets("ip6", addresses.ip6);
  };

  /** The global default_dispvm's name, for a request that names no AppVM. */
  private defaultDispvm(): string {
    const fallback = this.resolver.global(globalSpec("default_dispvm")).value;
    if (typeof fallback !== "string") throw noDefaultDispvm();
    return fallback;
  }

}

/** Where a new VM's volumes go, and what some are made from, as the request asks. */
function placementOf(request: NewVm): VolumePlacement {
  return { pool: request.pool, volumePools: request.volumePools, contents: request.volumes };
}

/** Whether some of the new VM's volumes are imported, byte by byte. */
function importsBytes(request: NewVm): boolean {
  return Object.values(request.volumes ?? {}).some((content) => content.kind !== "existing");
}

/** The request as its request_id stands for it: a stream's bytes are not part of it, its size and checksum are. */
function withoutChunks(request: NewVm): NewVm {
  const volumes = Object.fromEntries(Object.entries(request.volumes ?? {}).map(([name, content]) => [name, content.kind === "stream" ? { ...content, chunks: "(stream)" } : content]));
  return { ...request, volumes } as NewVm;
}

/** What a request asks, for its request_id to stand for: all of it but that id. */
function asked<R extends { idempotencyKey: string }>(request: R): Omit<R, "idempotencyKey"> {
  const { idempotencyKey: _key, ...rest } = request;
  return rest;
}

/**
 * The template a new VM of `klass` gets: the one named, else the global default_template when
 * the class needs one; undefined for a class without templates when none is named.
 */
export function templateFor(store: Store, lookup: VmLookup, resolver: PropertyResolver, klass: VmClassName, text: string): VmRecord | undefined {
  const needed = vmClass(klass).templateClass;
  if (text === "") {
    if (!needed) return undefined;
    const fallback = resolver.global(globalSpec("default_template")).value;
    if (typeof fallback === "string") return store.vms.byName(fallback);
    throw noTemplateGiven(klass);
  }
  const template = lookup.resolve(text, "template");
  if (needed ? template.klass !== needed : !vmClass(template.klass).isTemplate) throw notATemplate(template);
  return template;
}

/** The class CreateVm (or CloneVm's klass) asks for, when it may make VMs of it. */
export function creatableClass(klass: VmClassName | undefined): VmClassName {
  if (!klass) throw invalidVmClass("klass", "a VM class is required: TemplateVM, AppVM or StandaloneVM");
  const spec = vmClass(klass);
  if (spec.disposable) throw invalidVmClass("klass", "DispVMs are made by CreateDisposableVm");
  if (!spec.creatable) throw invalidVmClass("klass", "there is one AdminVM, dom0, and it cannot be created");
  return klass;
}

/** The volumes a VM has, by name; volume_pools and volumes may name only these. */
const VOLUME_NAMES = ["root", "private", "volatile", "kernel"];

/** Refuses pools that do not exist, volume_pools keys that name no volume, and both pool and volume_pools. */
export function checkPools(store: Store, pool: string, volumePools: Readonly<Record<string, string>>): void {
  const perVolume = Object.entries(volumePools);
  if (pool && perVolume.length > 0) throw poolConflict();
  for (const [volume, named] of perVolume) {
    if (!VOLUME_NAMES.includes(volume)) throw invalidVolumeName(`volume_pools[${volume}]`, volume, VOLUME_NAMES);
    if (!store.pools.get(named)) throw poolNotFound(named);
  }
  if (pool && !store.pools.get(pool)) throw poolNotFound(pool);
}
