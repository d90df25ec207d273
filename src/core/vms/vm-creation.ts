import { vmClass, type VmClassName } from "../model/vm-classes";
import { InvalidFieldError } from "../errors";
import { draftRecord, type VmIdentity, type VmRecord } from "../model/vm-record";
import type { CallContext } from "../shared/call-context";
import type { ProgressReporter } from "../shared/progress";
import type { Labels } from "./labels";
import type { NewVms } from "./new-vms";
import { servesDispvms } from "./properties/property-checks";
import type { PropertyResolver } from "./properties/property-resolver";
import { globalSpec, MAX_DISPID, vmPropertySpecs, vmSpec, type PropertyValue } from "./properties/property-schema";
import { addressesOfDispid } from "./properties/vm-addresses";
import { chooseDispid, systemRandomBelow, type RandomBelow } from "./dispids";
import type { VmProperties } from "./properties/vm-properties";
import type { Vm } from "./read-model/vm-view";
import { invalidVmClass, noDefaultDispvm, noFreeDispid, notADispvmTemplate, notATemplate, noTemplateGiven, poolConflict, poolNotFound } from "./vm-errors";
import type { VmLookup } from "./vm-lookup";
import { checkChosenUuid, checkVmName } from "./vm-names";
import type { VmOperations } from "./vm-operations";
import type { VmParticipants } from "./vm-participant";
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
    return this.newVms.make(
      () => this.draft(request, name, klass, identity),
      { rpc: "CreateVm", key: "", request, ctx, operation },
      this.participants.join("onCreate") ? (vm, revert) => this.participants.created(vm, ctx, revert, { pool: request.pool, volumePools: request.volumePools }) : undefined,
    );
  }

  /**
   * Refuses a request that cannot make a VM as things stand now (a bad field, a name taken, a
   * missing template…), before any work begins: the call fails, not an operation. What changes
   * meanwhile is checked again as the VM is made.
   */
  check(request: NewVm): void {
    const { name, klass, chosenUuid } = this.parse(request);
    this.draft(request, name, klass, this.newVms.identity(chosenUuid));
  }

  private parse(request: NewVm): { name: string; klass: VmClassName; chosenUuid: string | undefined } {
    const name = checkVmName(request.name, "name");
    const klass = creatableClass(request.klass);
    const chosenUuid = checkChosenUuid(request.uuid ?? "", "uuid");
    checkPools(this.store, request.pool, request.volumePools);
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

/** The volumes a VM has, by name; volume_pools may name only these. */
const VOLUME_NAMES = ["root", "private", "volatile", "kernel"];

/** Refuses pools that do not exist, volume_pools keys that name no volume, and both pool and volume_pools. */
export function checkPools(store: Store, pool: string, volumePools: Readonly<Record<string, string>>): void {
  const perVolume = Object.entries(volumePools);
  if (pool && perVolume.length > 0) throw poolConflict();
  for (const [volume, named] of perVolume) {
    if (!VOLUME_NAMES.includes(volume)) throw new InvalidFieldError(`volume_pools[${volume}]`, `a VM's volumes are ${VOLUME_NAMES.join(", ")}`);
    if (!store.pools.get(named)) throw poolNotFound(named);
  }
  if (pool && !store.pools.get(pool)) throw poolNotFound(pool);
}
