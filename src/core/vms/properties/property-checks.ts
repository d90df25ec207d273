import type { Store } from "../../../ports/store";
import { vmClass } from "../../model/vm-classes";
import type { VmRecord } from "../../model/vm-record";
import { labelNotFound, namedVmNotFound, notADispvmTemplate, notATemplate, templateMissing, templateRequired } from "../vm-errors";
import {
  addressInUse,
  dispvmsBasedOnIt,
  dispvmsRunning,
  dispvmTemplateInUse,
  invalidAddress,
  invalidPoolName,
  invalidPropertyValue,
  memoryOverMaxmem,
  propertyTooLong,
  netvmInUse,
  netvmLoop,
  notANetvm,
  propertyOutOfRange,
  propertyTypeMismatch,
} from "./property-errors";
import type { PropertyResolver } from "./property-resolver";
import { defaultAddresses, isUnicastAddress, normalisedAddress, type AddressKind } from "./vm-addresses";
import { GLOBAL_DISPVM_TEMPLATES, globalSpec, maxLengthOf, vmSpec, type PropertySpec, type PropertyValue } from "./property-schema";

const POOL_NAME = /^(?:[A-Za-z][A-Za-z0-9_.-]{0,62})?$/;

/** Checks a value against its property's type and bounds; returns the VM a vm value names. */
export function checkValue(store: Store, spec: PropertySpec, value: PropertyValue, field: string): VmRecord | undefined {
  const wrongType = () => propertyTypeMismatch(field, `${spec.name} is of type ${spec.type}`);
  switch (spec.type) {
    case "int":
      if (typeof value !== "number" || !Number.isSafeInteger(value)) throw wrongType();
      if ((spec.min !== undefined && value < spec.min) || (spec.max !== undefined && value > spec.max)) {
        throw propertyOutOfRange(field, `${spec.name} must be from ${spec.min} to ${spec.max}`);
      }
      return undefined;
    case "bool":
      if (typeof value !== "boolean") throw wrongType();
      return undefined;
    case "str":
      if (typeof value !== "string") throw wrongType();
      if (spec.choices && !spec.choices.includes(value)) {
        throw propertyOutOfRange(field, `${spec.name} is one of ${spec.choices.join(", ")}`);
      }
      if (value.includes("\0")) throw invalidPropertyValue(field, "text must not hold NUL");
      checkText(spec, value, field);
      return undefined;
    case "label":
      if (typeof value !== "string") throw wrongType();
      if (!store.labels.get(value)) throw labelNotFound(value, field);
      return undefined;
    case "vm": {
      if (value !== null && typeof value !== "string") throw wrongType();
      if (value === null) return undefined;
      const target = value.startsWith("uuid:") ? store.vms.byUuid(value.slice(5).toLowerCase()) : store.vms.byName(value);
      if (!target) throw namedVmNotFound(value, field);
      return target;
    }
  }
}

/** A str property's text is within its length, and looks as its pattern says. */
function checkText(spec: PropertySpec, value: string, field: string): void {
  const maxLength = maxLengthOf(spec);
  // Counted in code points only when the UTF-16 length could be over: most text is short.
  if (value.length > maxLength && [...value].length > maxLength) throw propertyTooLong(field, spec.name, maxLength);
  if (spec.pattern && !spec.pattern.regex.test(value)) throw invalidPropertyValue(field, `${spec.name} is ${spec.pattern.description}`);
}

/** Whether a VM runs: what some rules about a VM's template depend on. */
export type IsRunning = (vm: VmRecord) => boolean;

const ADDRESS_KINDS: ReadonlySet<string> = new Set(["ip", "ip6", "mac"]);

/** A value as Steward keeps it: an address in its canonical form; anything else as given. */
export function normalisedValue(spec: PropertySpec, value: PropertyValue): PropertyValue {
  return ADDRESS_KINDS.has(spec.name) && typeof value === "string" ? normalisedAddress(spec.name as AddressKind, value) : value;
}

/** Qubes' rules about what a VM property may name or be, beyond its type. */
export function checkVmProperty(
  store: Store,
  resolver: PropertyResolver,
  vm: VmRecord,
  spec: PropertySpec,
  value: PropertyValue,
  target: VmRecord | undefined,
  isRunning: IsRunning,
): void {
  switch (spec.name) {
    case "template":
      if (!target) throw templateRequired("value");
      requireTemplateOfClass(resolver, vm, target);
      refuseIfDispvmsRun(store, vm, isRunning);
      return;
    case "netvm":
      if (target) checkNetvm(resolver, vm, target);
      return;
    case "default_dispvm":
      if (target) requireDispvmTemplate(resolver, target);
      return;
    case "provides_network":
      if (value === false) refuseIfUsedAsNetvm(store, resolver, vm);
      return;
    case "template_for_dispvms":
      if (value === false) {
        refuseIfUsedAsDispvmTemplate(store, resolver, vm);
        refuseIfDispvmsBasedOn(store, vm);
      }
      return;
    case "ip":
    case "ip6":
    case "mac":
      checkAddress(store, vm, spec, value as string);
      return;
  }
}

/** The properties whose change can bring a VM's memory above its maxmem. */
export const MEMORY_BOUNDS: ReadonlySet<string> = new Set(["memory", "maxmem", "template"]);

/**
 * A VM's memory is at most its maxmem (unless maxmem is 0: no balancing, no bound), as Qubes'
 * memory and maxmem setters require; checked on the values as written, defaults included.
 */
export function requireMemoryWithinMaxmem(resolver: PropertyResolver, vm: VmRecord): void {
  if (vmClass(vm.klass).isHost) return;
  const memory = resolver.vm(vm, vmSpec("memory")).value as number;
  const maxmem = resolver.vm(vm, vmSpec("maxmem")).value as number;
  if (maxmem !== 0 && memory > maxmem) throw memoryOverMaxmem(vm.name, memory, maxmem);
}

/**
 * The same for a VM whose memory or maxmem was written, and for every VM that runs from it
 * (through its templates) and so may take its memory by default: a template's change never
 * puts another VM over its maxmem.
 */
export function requireMemoryWithinMaxmemFrom(store: Store, resolver: PropertyResolver, vm: VmRecord): void {
  requireMemoryWithinMaxmem(resolver, vm);
  if (!vmClass(vm.klass).isTemplate && !vmClass(vm.klass).dispvmBase) return;
  for (const other of store.vms.all()) if (other.qid !== vm.qid && runsFrom(resolver, other, vm)) requireMemoryWithinMaxmem(resolver, other);
}

/** The same for every VM: after default_template changed whose memory many VMs take. */
export function requireMemoryWithinMaxmemEverywhere(store: Store, resolver: PropertyResolver): void {
  for (const vm of store.vms.all()) requireMemoryWithinMaxmem(resolver, vm);
}

/** Whether `template` is in the VM's chain of templates (a DispVM's AppVM, then its TemplateVM). */
function runsFrom(resolver: PropertyResolver, vm: VmRecord, template: VmRecord): boolean {
  let hop = resolver.templateOf(vm);
  for (let hops = 0; hop && hops < MAX_TEMPLATE_HOPS; hops++, hop = resolver.templateOf(hop)) if (hop.qid === template.qid) return true;
  return false;
}

/** Far more than any chain of templates (a DispVM, its AppVM, its TemplateVM). */
const MAX_TEMPLATE_HOPS = 8;

/** Qubes' rules for global properties that name VMs or pools. */
export function checkGlobalProperty(resolver: PropertyResolver, spec: PropertySpec, value: PropertyValue, target: VmRecord | undefined): void {
  if (spec.name === "default_template" && target) requireTemplateVm(target);
  if (spec.name === "default_netvm" && target) requireNetvmProvider(resolver, target);
  if (GLOBAL_DISPVM_TEMPLATES.includes(spec.name) && target) requireDispvmTemplate(resolver, target);
  if (spec.name.startsWith("default_pool") && !POOL_NAME.test(value as string)) {
    throw invalidPoolName();
  }
}

/**
 * Refuses (NO_TEMPLATE, NOT_A_TEMPLATE, NOT_A_DISPVM_TEMPLATE) a VM whose effective template does
 * not suit its class: checked once a change that can alter it by way of a default is written (a
 * template reset, default_template set or reset), within its transaction.
 */
export function requireCoherentTemplate(resolver: PropertyResolver, vm: VmRecord): void {
  if (!vmClass(vm.klass).templateClass) return;
  const template = resolver.templateOf(vm);
  if (!template) throw templateMissing(vm);
  requireTemplateOfClass(resolver, vm, template);
}

/** The same, for every VM that takes the global default_template. */
export function requireCoherentTemplates(store: Store, resolver: PropertyResolver): void {
  for (const vm of store.vms.all()) if (vm.properties.template === undefined) requireCoherentTemplate(resolver, vm);
}

/** A VM's template is of the class its own class names (and a DispVM's base serves DispVMs). */
function requireTemplateOfClass(resolver: PropertyResolver, vm: VmRecord, target: VmRecord): void {
  const needed = vmClass(vm.klass).templateClass!;
  if (vmClass(needed).dispvmBase) requireDispvmTemplate(resolver, target);
  else if (target.klass !== needed) throw notATemplate(target, "vm");
}

function requireTemplateVm(target: VmRecord): void {
  if (!vmClass(target.klass).isTemplate) throw notATemplate(target, "vm");
}

/** Whether DispVMs may be based on the VM: its class allows it, and template_for_dispvms says so. */
export function servesDispvms(resolver: PropertyResolver, vm: VmRecord): boolean {
  return vmClass(vm.klass).dispvmBase && resolver.vm(vm, vmSpec("template_for_dispvms")).value === true;
}

function requireDispvmTemplate(resolver: PropertyResolver, target: VmRecord): void {
  if (!servesDispvms(resolver, target)) throw notADispvmTemplate(target);
}

function providesNetwork(resolver: PropertyResolver, vm: VmRecord): boolean {
  return resolver.vm(vm, vmSpec("provides_network")).value === true;
}

function requireNetvmProvider(resolver: PropertyResolver, target: VmRecord): void {
  if (vmClass(target.klass).isHost || !providesNetwork(resolver, target)) throw notANetvm(target.name);
}

function checkNetvm(resolver: PropertyResolver, vm: VmRecord, target: VmRecord): void {
  requireNetvmProvider(resolver, target);
  // Follow the chain from the new netvm: it must never come back to this VM.
  const chain = [vm.name];
  for (let hop: VmRecord | undefined = target; hop; hop = resolver.netvmOf(hop)) {
    chain.push(hop.name);
    if (hop.qid === vm.qid) {
      throw netvmLoop(vm.name, target.name, chain);
    }
    if (chain.length > 256) break;
  }
}

/**
 * Refuses (NETVM_LOOP) a state in which a chain of netvms comes back on itself: checked once a
 * change that can close a loop by way of a default (default_netvm, a netvm reset to it) is
 * written, within its transaction, over every VM — what an explicit value would close is caught
 * before it is written, with the chain it would make.
 */
export function refuseNetvmLoops(store: Store, resolver: PropertyResolver): void {
  const settled = new Set<number>();
  for (const start of store.vms.all()) {
    const chain: VmRecord[] = [];
    for (let hop: VmRecord | undefined = start; hop && !settled.has(hop.qid); hop = resolver.netvmOf(hop)) {
      if (chain.some((seen) => seen.qid === hop.qid)) {
        const loop = chain.slice(chain.findIndex((seen) => seen.qid === hop.qid)).concat(hop);
        throw netvmLoop(loop[0].name, loop[1].name, loop.map((link) => link.name));
      }
      chain.push(hop);
    }
    for (const link of chain) settled.add(link.qid);
  }
}

/** The DispVMs based on this AppVM (their template). */
function dispvmsBasedOn(store: Store, vm: VmRecord): VmRecord[] {
  return store.vms.referencesTo(vm.qid, ["template"]).flatMap((use) => store.vms.byName(use.vm) ?? []).filter((other) => vmClass(other.klass).disposable);
}

function refuseIfDispvmsBasedOn(store: Store, vm: VmRecord): void {
  const users = dispvmsBasedOn(store, vm).map((other) => other.name);
  if (users.length > 0) throw dispvmsBasedOnIt(vm.name, users);
}

/** An AppVM's template does not change under the DispVMs based on it that run. */
export function refuseIfDispvmsRun(store: Store, vm: VmRecord, isRunning: IsRunning): void {
  const running = dispvmsBasedOn(store, vm).filter(isRunning).map((other) => other.name);
  if (running.length > 0) throw dispvmsRunning(vm.name, running);
}

function refuseIfUsedAsNetvm(store: Store, resolver: PropertyResolver, vm: VmRecord): void {
  const users = store.vms.all().filter((other) => other.qid !== vm.qid && resolver.netvmOf(other)?.qid === vm.qid).map((other) => other.name);
  if (resolver.global(globalSpec("default_netvm")).value === vm.name) {
    users.push("the global default_netvm");
  }
  if (users.length > 0) throw netvmInUse(vm.name, users);
}

function refuseIfUsedAsDispvmTemplate(store: Store, resolver: PropertyResolver, vm: VmRecord): void {
  const users = store.vms.all().filter((other) => resolver.vm(other, vmSpec("default_dispvm")).value === vm.name).map((other) => other.name);
  for (const global of GLOBAL_DISPVM_TEMPLATES) if (resolver.global(globalSpec(global)).value === vm.name) users.push(`the global ${global}`);
  if (users.length > 0) throw dispvmTemplateInUse(vm.name, users);
}

/**
 * An address is a unicast one of its kind, and no other VM's: not one it set, nor the one its qid
 * (or dispid) gives it by default, even while it has no network (it gets that one as soon as it has a netvm).
 */
function checkAddress(store: Store, vm: VmRecord, spec: PropertySpec, value: string): void {
  const kind = spec.name as AddressKind;
  if (!isUnicastAddress(kind, value)) throw invalidAddress(spec.name);
  const holder = store.vms.all().find((other) => other.qid !== vm.qid && !vmClass(other.klass).isHost && (other.properties[kind] ?? defaultAddresses(other)[kind]) === value);
  if (holder) throw addressInUse(value, spec.name, holder.name);
}
