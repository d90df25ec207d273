import { isIP } from "node:net";
import type { Store, VmRecord } from "../../ports/store";
import { alreadyExists, failedPrecondition, InvalidFieldError, notFound } from "../errors";
import type { PropertyResolver } from "./property-resolver";
import { globalSpec, vmSpec, type PropertySpec, type PropertyValue } from "./property-schema";

const POOL_NAME = /^(?:[A-Za-z][A-Za-z0-9_.-]{0,62})?$/;
const MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;

/** Checks a value against its property's type and bounds; returns the VM a vm value names. */
export function checkValue(store: Store, spec: PropertySpec, value: PropertyValue, field: string): VmRecord | undefined {
  const wrongType = () => new InvalidFieldError(field, `${spec.name} is of type ${spec.type}`, "PROPERTY_TYPE_MISMATCH");
  switch (spec.type) {
    case "int":
      if (typeof value !== "number" || !Number.isSafeInteger(value)) throw wrongType();
      if ((spec.min !== undefined && value < spec.min) || (spec.max !== undefined && value > spec.max)) {
        throw new InvalidFieldError(field, `${spec.name} must be from ${spec.min} to ${spec.max}`, "PROPERTY_OUT_OF_RANGE");
      }
      return undefined;
    case "bool":
      if (typeof value !== "boolean") throw wrongType();
      return undefined;
    case "str":
      if (typeof value !== "string") throw wrongType();
      if (spec.choices && !spec.choices.includes(value)) {
        throw new InvalidFieldError(field, `${spec.name} is one of ${spec.choices.join(", ")}`, "PROPERTY_OUT_OF_RANGE");
      }
      if (value.includes("\0")) throw new InvalidFieldError(field, "text must not hold NUL", "INVALID_PROPERTY_VALUE");
      return undefined;
    case "label":
      if (typeof value !== "string") throw wrongType();
      if (!store.labels.get(value)) throw notFound("LABEL_NOT_FOUND", `no label named ${value}`, { label: value, field });
      return undefined;
    case "vm": {
      if (value !== null && typeof value !== "string") throw wrongType();
      if (value === null) return undefined;
      const target = value.startsWith("uuid:") ? store.vms.byUuid(value.slice(5).toLowerCase()) : store.vms.byName(value);
      if (!target) throw notFound("VM_NOT_FOUND", `no VM named ${value}`, { vm: value, field });
      return target;
    }
  }
}

/** Qubes' rules about what a VM property may name or be, beyond its type. */
export function checkVmProperty(store: Store, resolver: PropertyResolver, vm: VmRecord, spec: PropertySpec, value: PropertyValue, target: VmRecord | undefined): void {
  switch (spec.name) {
    case "template":
      if (!target) throw new InvalidFieldError("value", "an AppVM or DispVM needs a template", "NO_TEMPLATE");
      if (vm.klass === "AppVM") requireTemplateVm(target);
      else requireDispvmTemplate(resolver, target);
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
      if (value === false) refuseIfUsedAsDispvmTemplate(store, resolver, vm);
      return;
    case "ip":
    case "ip6":
    case "mac":
      checkAddress(store, resolver, vm, spec, value as string);
      return;
  }
}

/** Qubes' rules for global properties that name VMs or pools. */
export function checkGlobalProperty(resolver: PropertyResolver, spec: PropertySpec, value: PropertyValue, target: VmRecord | undefined): void {
  if (spec.name === "default_template" && target) requireTemplateVm(target);
  if (spec.name === "default_netvm" && target) requireNetvmProvider(resolver, target);
  if (spec.name === "default_dispvm" && target) requireDispvmTemplate(resolver, target);
  if (spec.name.startsWith("default_pool") && !POOL_NAME.test(value as string)) {
    throw new InvalidFieldError("value", "pool names start with a letter, then letters, digits, '_', '.' or '-'", "INVALID_POOL_NAME");
  }
}

function requireTemplateVm(target: VmRecord): void {
  if (target.klass !== "TemplateVM") {
    throw failedPrecondition("NOT_A_TEMPLATE", `${target.name} is a ${target.klass}, not a TemplateVM`, { vm: target.name });
  }
}

function requireDispvmTemplate(resolver: PropertyResolver, target: VmRecord): void {
  const allowed = target.klass === "AppVM" && resolver.vm(target, vmSpec("template_for_dispvms")).value === true;
  if (!allowed) {
    throw failedPrecondition("NOT_A_DISPVM_TEMPLATE", `${target.name} is not an AppVM with template_for_dispvms`, { vm: target.name });
  }
}

function providesNetwork(resolver: PropertyResolver, vm: VmRecord): boolean {
  return resolver.vm(vm, vmSpec("provides_network")).value === true;
}

function requireNetvmProvider(resolver: PropertyResolver, target: VmRecord): void {
  if (target.klass === "AdminVM" || !providesNetwork(resolver, target)) {
    throw failedPrecondition("NOT_A_NETVM", `${target.name} does not provide network (provides_network is false)`, { vm: target.name });
  }
}

function checkNetvm(resolver: PropertyResolver, vm: VmRecord, target: VmRecord): void {
  requireNetvmProvider(resolver, target);
  // Follow the chain from the new netvm: it must never come back to this VM.
  const chain = [vm.name];
  for (let hop: VmRecord | undefined = target; hop; hop = resolver.netvmOf(hop)) {
    chain.push(hop.name);
    if (hop.qid === vm.qid) {
      throw failedPrecondition("NETVM_LOOP", `that would make a network loop: ${chain.join(" -> ")}`, { vm: vm.name, netvm: target.name });
    }
    if (chain.length > 256) break;
  }
}

function refuseIfUsedAsNetvm(store: Store, resolver: PropertyResolver, vm: VmRecord): void {
  const users = store.vms.all().filter((other) => other.qid !== vm.qid && resolver.netvmOf(other)?.qid === vm.qid).map((other) => other.name);
  if (resolver.global(globalSpec("default_netvm")).value === vm.name) {
    users.push("the global default_netvm");
  }
  if (users.length > 0) {
    throw failedPrecondition("NETVM_IN_USE", `${vm.name} is the netvm of ${users.join(", ")}`, { vm: vm.name, used_by: users.join(",") });
  }
}

function refuseIfUsedAsDispvmTemplate(store: Store, resolver: PropertyResolver, vm: VmRecord): void {
  const users = store.vms.all().filter((other) => resolver.vm(other, vmSpec("default_dispvm")).value === vm.name).map((other) => other.name);
  if (users.length > 0) {
    throw failedPrecondition("DISPVM_TEMPLATE_IN_USE", `${vm.name} is the default_dispvm of ${users.join(", ")}`, { vm: vm.name, used_by: users.join(",") });
  }
}

function checkAddress(store: Store, resolver: PropertyResolver, vm: VmRecord, spec: PropertySpec, value: string): void {
  const valid = spec.name === "ip" ? isIP(value) === 4 : spec.name === "ip6" ? isIP(value) === 6 : MAC.test(value);
  if (!valid) throw new InvalidFieldError("value", `not a valid ${spec.name} address`, "INVALID_ADDRESS");
  const holder = store.vms.all().find((other) => other.qid !== vm.qid && other.klass !== "AdminVM" && resolver.vm(other, spec).value === value);
  if (holder) throw alreadyExists("ADDRESS_IN_USE", `${value} is the ${spec.name} of ${holder.name}`, { vm: holder.name, [spec.name]: value });
}
