import { randomUUID } from "node:crypto";
import type { Clock } from "../ports/clock";
import type { Hypervisor, PowerState } from "../ports/hypervisor";
import type { Store, VmFilter, VmRecord } from "../ports/store";
import { alreadyExists, failedPrecondition, InvalidFieldError, notFound } from "./errors";
import type { Labels } from "./labels";
import { VM_CLASSES, type VmClassName } from "./vm-classes";
import type { PropertyResolver, SnapshotResolver } from "./properties/property-resolver";
import { GLOBAL_VM_PROPERTIES, globalSpec, vmPropertySpecs, vmSpec, type PropertyValue } from "./properties/property-schema";
import type { Property, VmProperties } from "./properties/vm-properties";
import { StableVmViews, type StableVmView } from "./stable-vm-views";
import type { VmLookup } from "./vm-lookup";
import { checkVmName } from "./vm-names";

/** A VM as the core shows it. */
export interface Vm {
  qid: number;
  uuid: string;
  name: string;
  klass: VmClassName;
  state: PowerState;
  label: string;
  /** The template's name; empty when the VM has none. */
  template: string;
  tags: readonly string[];
  createdAt: Date;
  /** When it started; undefined while halted. */
  startedAt: Date | undefined;
  /** Every property, in the full view only; those the hypervisor decides come last (`live`). */
  properties?: Property[];
  /** The features, in the full view only. */
  features?: Readonly<Record<string, string>>;
  /** In the full view, what stands for its stored part; see StableVmView. */
  stable?: StableVmView;
  /** In the full view, the properties the hypervisor decides, as it says now. */
  live?: readonly Property[];
}

export interface NewVm {
  name: string;
  klass: VmClassName | undefined;
  label: string;
  template: string;
  properties: Readonly<Record<string, PropertyValue>>;
  pool: string;
  volumePools: Readonly<Record<string, string>>;
  requestId: string;
}

export interface VmListRequest {
  filter: VmFilter & { state?: PowerState };
  pageSize: number;
  pageToken: string;
  /** With every property and the features of each VM. */
  full: boolean;
}

export interface VmPage {
  vms: Vm[];
  nextPageToken: string;
  totalSize: number;
}

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;
/** Properties whose value names another VM: a VM named by one of them cannot be removed. */
export const VM_REFERENCE_PROPERTIES = ["template", "netvm", "default_dispvm"] as const;
/** What a clone does not take from its source: what names it, and addresses, which stay unique. */
const UNCOPIED = new Set(["name", "uuid", "qid", "klass", "label", "template", "ip", "ip6", "mac", "start_time"]);

/** Creating, finding, listing and removing VMs, with Qubes' rules. */
export class VmRegistry {
  private readonly stableViews: StableVmViews;

  constructor(
    private readonly store: Store,
    private readonly lookup: VmLookup,
    private readonly hypervisor: Hypervisor,
    private readonly labels: Labels,
    private readonly properties: VmProperties,
    private readonly resolver: PropertyResolver,
    private readonly clock: Clock,
  ) {
    this.stableViews = new StableVmViews(store, properties);
  }

  /** The VM a request names (its name or `uuid:<uuid>`), with every property and its features. */
  get(text: string, field = "vm"): Vm {
    return this.fullViews([this.lookup.resolve(text, field)], this.resolver.snapshot())[0]!;
  }

  list(request: VmListRequest): VmPage {
    if (request.pageSize < 0) throw new InvalidFieldError("page_size", "must not be negative");
    const pageSize = Math.min(request.pageSize || DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
    const { state, ...filter } = request.filter;
    const resolver = this.resolver.snapshot();
    // The power state comes from the hypervisor, not the store: it is filtered here.
    const matching = this.matching(filter, decodePageToken(request.pageToken, request.filter), state, pageSize + 1);
    const records: VmRecord[] = [];
    let next = matching.next();
    while (!next.done && records.length < pageSize) {
      records.push(next.value);
      next = matching.next();
    }
    const more = !next.done;
    const vms = request.full ? this.fullViews(records, resolver) : records.map((record) => this.view(record, resolver));
    return {
      vms,
      nextPageToken: more ? encodePageToken(vms[vms.length - 1]!.name, request.filter) : "",
      totalSize: state ? count(this.matching(filter, "", state, MAX_PAGE_SIZE)) : this.store.vms.count(filter),
    };
  }

  /** The VMs after `after` that match, by name, read from the store a batch at a time. */
  private *matching(filter: VmFilter, after: string, state: PowerState | undefined, batchSize: number): Generator<VmRecord, void, undefined> {
    for (;;) {
      const batch = this.store.vms.list(filter, after, batchSize);
      for (const record of batch) {
        if (!state || this.powerState(record) === state) yield record;
      }
      if (batch.length < batchSize) return;
      after = batch[batch.length - 1]!.name;
    }
  }

  create(request: NewVm, caller: string): Vm {
    const name = checkVmName(request.name, "name");
    const klass = creatableClass(request.klass);
    checkPools(request.pool, request.volumePools);
    return this.store.transaction(() => {
      const earlier = this.earlierResult(request.requestId, "CreateVm");
      if (earlier) return earlier;
      this.requireFreeName(name);
      const label = this.labels.get(request.label, "label");
      const template = this.templateFor(klass, request.template);
      const record = this.insert(name, klass, label.name, klass === "AppVM" ? template : undefined);
      this.properties.setAtCreation(record, request.properties);
      return this.announce(record, caller, request.requestId, "CreateVm");
    });
  }

  /**
   * Makes a DispVM from an AppVM with template_for_dispvms (or the global default_dispvm), named
   * disp<N>, removed when it halts (auto_cleanup).
   */
  createDisposable(request: { template: string; label: string; requestId: string }, caller: string): Vm {
    return this.store.transaction(() => {
      const earlier = this.earlierResult(request.requestId, "CreateDisposableVm");
      if (earlier) return earlier;
      const base = this.disposableBase(request.template);
      const label = request.label ? this.labels.get(request.label, "label").name : (this.resolver.vm(base, vmSpec("label")).value as string);
      const record = this.insert(this.nextDisposableName(), "DispVM", label, base);
      this.store.vms.setProperty(record.qid, "auto_cleanup", "1");
      return this.announce(this.store.vms.byQid(record.qid)!, caller, request.requestId, "CreateDisposableVm");
    });
  }

  /**
   * Copies a halted VM with its properties, features, tags and notes under a new name (and
   * optionally another class). Addresses are not copied: they stay unique.
   */
  clone(request: { vm: string; newName: string; klass: VmClassName | undefined; pool: string; volumePools: Readonly<Record<string, string>>; requestId: string }, caller: string): Vm {
    const name = checkVmName(request.newName, "new_name");
    const klass = request.klass === undefined ? undefined : creatableClass(request.klass);
    checkPools(request.pool, request.volumePools);
    return this.store.transaction(() => {
      const earlier = this.earlierResult(request.requestId, "CloneVm");
      if (earlier) return earlier;
      const source = this.lookup.resolve(request.vm, "vm");
      if (source.klass === "AdminVM") throw failedPrecondition("VM_IS_ADMIN", `${source.name} is the AdminVM and cannot be cloned`, { vm: source.name });
      if (source.klass === "DispVM") throw failedPrecondition("VM_IS_DISPOSABLE", `${source.name} is a DispVM and cannot be cloned`, { vm: source.name });
      this.requireHalted(source, "cloned");
      this.requireFreeName(name);
      const newClass = klass ?? source.klass;
      const template = newClass === "AppVM" ? this.templateFor(newClass, this.resolver.templateOf(source)?.name ?? "") : undefined;
      const record = this.insert(name, newClass, source.properties.label ?? "black", template);
      const copied = vmPropertySpecs(newClass).filter((spec) => !UNCOPIED.has(spec.name) && source.properties[spec.name] !== undefined);
      for (const spec of copied) this.store.vms.setProperty(record.qid, spec.name, source.properties[spec.name]!);
      for (const [feature, value] of Object.entries(this.store.vms.features(source.qid))) this.store.vms.setFeature(record.qid, feature, value);
      for (const tag of source.tags) if (!tag.startsWith("created-by-")) this.store.vms.addTag(record.qid, tag);
      this.store.vms.setNotes(record.qid, this.store.vms.notes(source.qid));
      return this.announce(this.store.vms.byQid(record.qid)!, caller, request.requestId, "CloneVm");
    });
  }

  /** Removes a DispVM with auto_cleanup once it halted; called by the lifecycle. */
  cleanUpDisposable(uuid: string): void {
    const record = this.store.vms.byUuid(uuid);
    if (!record || record.klass !== "DispVM" || this.resolver.vm(record, vmSpec("auto_cleanup")).value !== true) return;
    // A DispVM that another VM still names (as its netvm, say) stays, as it would on RemoveVm.
    if (this.usersOf(record).length > 0) return;
    this.remove(`uuid:${uuid}`, true);
  }

  private insert(name: string, klass: VmClassName, label: string, template: VmRecord | undefined): VmRecord {
    const record = { qid: this.store.vms.nextQid(), uuid: randomUUID(), name, klass, createdAt: this.clock.now() };
    this.store.vms.insert(record);
    this.store.vms.setProperty(record.qid, "label", label);
    if (template) this.store.vms.setProperty(record.qid, "template", String(template.qid));
    return this.store.vms.byQid(record.qid)!;
  }

  /** Tags a new VM created-by-<caller>, tells of it, and remembers the request that made it. */
  private announce(record: VmRecord, caller: string, requestId: string, rpc: string): Vm {
    const tag = `created-by-${caller}`;
    this.store.vms.addTag(record.qid, tag);
    const now = this.clock.now();
    this.store.events.append({ subject: record.name, name: "domain-add", kwargs: { vm: record.name } }, now);
    this.store.events.append({ subject: record.name, name: `domain-tag-add:${tag}`, kwargs: { tag } }, now);
    if (requestId) this.store.requests.remember(requestId, rpc, record.uuid, now);
    return this.view(this.store.vms.byQid(record.qid)!);
  }

  private requireFreeName(name: string): void {
    if (this.store.vms.byName(name)) throw alreadyExists("VM_EXISTS", `a VM named ${name} exists`, { vm: name });
  }

  private disposableBase(text: string): VmRecord {
    let base: VmRecord | undefined;
    if (text) base = this.lookup.resolve(text, "template");
    else {
      const fallback = this.resolver.global(globalSpec("default_dispvm")).value;
      if (typeof fallback !== "string") throw failedPrecondition("NO_DEFAULT_DISPVM", "no template was given, and default_dispvm is not set");
      base = this.store.vms.byName(fallback)!;
    }
    if (base.klass !== "AppVM" || this.resolver.vm(base, vmSpec("template_for_dispvms")).value !== true) {
      throw failedPrecondition("NOT_A_DISPVM_TEMPLATE", `${base.name} is not an AppVM with template_for_dispvms`, { vm: base.name });
    }
    return base;
  }

  private nextDisposableName(): string {
    for (let n = 1; ; n++) if (!this.store.vms.byName(`disp${n}`)) return `disp${n}`;
  }

  /** Removes a halted VM that nothing uses; with allowMissing, a missing VM is success. */
  remove(text: string, allowMissing: boolean): void {
    this.store.transaction(() => {
      const record = allowMissing ? this.lookup.find(text, "vm") : this.lookup.resolve(text, "vm");
      if (!record) return;
      if (record.klass === "AdminVM") throw failedPrecondition("VM_IS_ADMIN", `${record.name} is the AdminVM and cannot be removed`, { vm: record.name });
      this.requireHalted(record, "removed");
      const users = this.usersOf(record);
      if (users.length > 0) {
        const described = users.join(", ");
        throw failedPrecondition("VM_IN_USE", `${record.name} is used by ${described}`, { vm: record.name, used_by: described });
      }
      this.store.vms.remove(record.qid);
      this.stableViews.forget(record.qid);
      this.store.events.append({ subject: record.name, name: "domain-delete", kwargs: { vm: record.name } }, this.clock.now());
    });
  }

  /** What names the VM: other VMs' template, netvm or default_dispvm, and global defaults. */
  private usersOf(record: VmRecord): string[] {
    const users = this.store.vms.referencesTo(record.qid, VM_REFERENCE_PROPERTIES).map((u) => `${u.vm} (${u.property})`);
    const globals = this.store.globals.all();
    for (const name of GLOBAL_VM_PROPERTIES) if (globals[name] === String(record.qid)) users.push(`the global ${name}`);
    return users;
  }

  /** Renames a halted VM; references to it follow, as they hold its qid. Idempotent. */
  rename(text: string, newNameText: string): Vm {
    const newName = checkVmName(newNameText, "new_name");
    return this.store.transaction(() => {
      const record = this.lookup.resolve(text, "vm");
      if (record.name === newName) return this.view(record);
      if (record.klass === "AdminVM") throw failedPrecondition("VM_IS_ADMIN", `${record.name} is the AdminVM and cannot be renamed`, { vm: record.name });
      this.requireHalted(record, "renamed");
      if (this.store.vms.byName(newName)) throw alreadyExists("VM_EXISTS", `a VM named ${newName} exists`, { vm: newName });
      this.store.vms.rename(record.qid, newName);
      const kwargs = { name: "name", newvalue: newName, oldvalue: record.name };
      this.store.events.append({ subject: newName, name: "property-set:name", kwargs }, this.clock.now());
      return this.view(this.store.vms.byQid(record.qid)!);
    });
  }


  private requireHalted(record: VmRecord, toBe: string): void {
    const state = this.hypervisor.powerState(record.uuid);
    if (state !== "Halted") {
      throw failedPrecondition("VM_NOT_HALTED", `${record.name} is ${state}: only a halted VM can be ${toBe}`, { vm: record.name, state });
    }
  }

  private fullViews(records: readonly VmRecord[], resolver: SnapshotResolver): Vm[] {
    const stable = this.stableViews.of(records, resolver);
    const source: StoredPartSource = {
      properties: (record, view) => this.stableViews.storedProperties(record, view, resolver),
      features: (record) => this.store.vms.features(record.qid),
    };
    return records.map((record, i) => {
      const { view, features } = stable[i]!;
      const live = view.live.map((spec) => resolver.vm(record, spec));
      return new FullVmView(this.view(record, resolver, view.template), view, live, record, features, source);
    });
  }

  private powerState(record: VmRecord): PowerState {
    // The AdminVM is the host itself: always running, as Qubes reports it.
    return record.klass === "AdminVM" ? "Running" : this.hypervisor.powerState(record.uuid);
  }

  private view(record: VmRecord, resolver = this.resolver, template = resolver.templateOf(record)?.name ?? ""): Vm {
    return {
      qid: record.qid,
      uuid: record.uuid,
      name: record.name,
      klass: record.klass,
      state: this.powerState(record),
      label: record.properties.label ?? "",
      template,
      tags: record.tags,
      createdAt: record.createdAt,
      startedAt: this.hypervisor.startTime(record.uuid),
    };
  }

  private templateFor(klass: VmClassName, text: string): VmRecord | undefined {
    const needed = VM_CLASSES.find((c) => c.name === klass)!.templateClass;
    if (text === "") {
      if (!needed) return undefined;
      const fallback = this.resolver.global(globalSpec("default_template")).value;
      if (typeof fallback === "string") return this.store.vms.byName(fallback);
      throw failedPrecondition("NO_TEMPLATE", `an ${klass} needs a template: none was given, and default_template is not set`);
    }
    const template = this.lookup.resolve(text, "template");
    if (template.klass !== "TemplateVM") {
      throw failedPrecondition("NOT_A_TEMPLATE", `${template.name} is a ${template.klass}, not a TemplateVM`, { template: template.name });
    }
    return template;
  }

  private earlierResult(requestId: string, rpc: string): Vm | undefined {
    if (!requestId) return undefined;
    const earlier = this.store.requests.find(requestId);
    if (!earlier) return undefined;
    if (earlier.rpc !== rpc) {
      throw new InvalidFieldError("request_id", `was used by an earlier ${earlier.rpc} request`, "REQUEST_ID_REUSED");
    }
    const record = this.store.vms.byUuid(earlier.result);
    if (!record) throw failedPrecondition("REQUEST_RESULT_GONE", `the VM that request ${requestId} made has been removed since`, { request_id: requestId });
    return this.view(record);
  }
}

/** Where the full views of one read work their stored part out, when asked. */
interface StoredPartSource {
  properties(record: VmRecord, stable: StableVmView): Property[];
  features(record: VmRecord): Readonly<Record<string, string>>;
}

/**
 * A VM's full view. Its stored properties are worked out each time they are read, and only
 * then: a caller that kept what it derived from `stable` does not read them, and a page of
 * views does not hold them all at once.
 */
class FullVmView implements Vm {
  readonly qid: number;
  readonly uuid: string;
  readonly name: string;
  readonly klass: VmClassName;
  readonly state: PowerState;
  readonly label: string;
  readonly template: string;
  readonly tags: readonly string[];
  readonly createdAt: Date;
  readonly startedAt: Date | undefined;

  constructor(
    basic: Vm,
    readonly stable: StableVmView,
    readonly live: readonly Property[],
    private readonly record: VmRecord,
    /** The features, when they were read with the stable view. */
    private readonly readFeatures: Readonly<Record<string, string>> | undefined,
    private readonly source: StoredPartSource,
  ) {
    ({ qid: this.qid, uuid: this.uuid, name: this.name, klass: this.klass, state: this.state } = basic);
    ({ label: this.label, template: this.template, tags: this.tags, createdAt: this.createdAt, startedAt: this.startedAt } = basic);
  }

  get properties(): Property[] {
    return this.source.properties(this.record, this.stable).concat(this.live);
  }

  get features(): Readonly<Record<string, string>> {
    return this.readFeatures ?? this.source.features(this.record);
  }
}

function count(items: Iterable<unknown>): number {
  let n = 0;
  for (const _ of items) n++;
  return n;
}

function creatableClass(klass: VmClassName | undefined): VmClassName {
  if (!klass) throw new InvalidFieldError("klass", "a VM class is required: TemplateVM, AppVM or StandaloneVM", "INVALID_VM_CLASS");
  if (klass === "DispVM") throw new InvalidFieldError("klass", "DispVMs are made by CreateDisposableVm", "INVALID_VM_CLASS");
  if (klass === "AdminVM") throw new InvalidFieldError("klass", "there is one AdminVM, dom0, and it cannot be created", "INVALID_VM_CLASS");
  return klass;
}

function checkPools(pool: string, volumePools: Readonly<Record<string, string>>): void {
  const perVolume = Object.values(volumePools);
  if (pool && perVolume.length > 0) throw failedPrecondition("POOL_CONFLICT", "give pool or volume_pools, not both");
  // Pools come with the storage service; until then there are none to name.
  const named = pool || perVolume[0];
  if (named) throw notFound("POOL_NOT_FOUND", `no pool named ${named}`, { pool: named });
}

function encodePageToken(after: string, filter: object): string {
  return Buffer.from(JSON.stringify({ after, filter })).toString("base64url");
}

function decodePageToken(token: string, filter: object): string {
  if (token === "") return "";
  try {
    const decoded = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as { after?: unknown; filter?: unknown };
    if (typeof decoded.after === "string" && JSON.stringify(decoded.filter) === JSON.stringify(filter)) return decoded.after;
  } catch {
    // fall through
  }
  throw new InvalidFieldError("page_token", "not a token of a previous reply to this same request", "INVALID_PAGE_TOKEN");
}
