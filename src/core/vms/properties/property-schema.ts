import { KERNEL_NAME as KERNEL_NAME_FORM } from "../../../ports/kernel-folder";
import { DEFAULT_POOL } from "../../model/pool";
import { VM_CLASSES, type VmClassName } from "../../model/vm-classes";

/**
 * The typed property schema, in Qubes' terms: each property has a type, help text, a rule for
 * when it may be written, and a default that may come from the template, a global property,
 * a constant, or be computed.
 */

export type PropertyType = "str" | "int" | "bool" | "vm" | "label";

/** A property's value; a vm value is the VM's name, or null for none. */
export type PropertyValue = string | number | boolean | null;

/**
 * A property with its effective value (undefined when it has none: no default, never set).
 * Never changed: one object may be shared by many VMs (see shared-properties.ts).
 */
export interface Property {
  readonly spec: PropertySpec;
  readonly value: PropertyValue | undefined;
  readonly isDefault: boolean;
}

export type WriteRule = "anytime" | "halted" | "creation" | "read-only";

export type DefaultSpec =
  | { kind: "none" }
  | { kind: "constant"; value: PropertyValue }
  | { kind: "template"; otherwise: DefaultSpec }
  | { kind: "global"; property: string }
  | { kind: "computed" }
  /** One default for VMs of `classes`, another for the rest. */
  | { kind: "byClass"; classes: readonly VmClassName[]; then: DefaultSpec; otherwise: DefaultSpec };

/** The default that applies to VMs of `klass`: a byClass default's branch for it. */
export function defaultOfClass(defaults: DefaultSpec, klass: VmClassName): Exclude<DefaultSpec, { kind: "byClass" }> {
  if (defaults.kind !== "byClass") return defaults;
  return defaultOfClass(defaults.classes.includes(klass) ? defaults.then : defaults.otherwise, klass);
}

export interface PropertySpec {
  name: string;
  type: PropertyType;
  help: string;
  write: WriteRule;
  default: DefaultSpec;
  /** The classes that have the property; undefined for all. */
  classes?: readonly VmClassName[];
  min?: number;
  max?: number;
  /** The values a str property accepts; undefined for any. */
  choices?: readonly string[];
  /** The most characters a str property holds; MAX_TEXT_PROPERTY unless given. */
  maxLength?: number;
  /** What a str property's text must look like, beyond its length. */
  pattern?: { regex: RegExp; description: string };
  /** Its value comes from the hypervisor, not the store (start_time): it changes without a write. */
  live?: true;
}

/** The most characters (Unicode code points) a str property holds, unless its spec says. */
export const MAX_TEXT_PROPERTY = 256;

/** The most characters a str property holds. */
export function maxLengthOf(spec: PropertySpec): number {
  return spec.maxLength ?? MAX_TEXT_PROPERTY;
}
/** Qubes' limit on kernelopts. */
const MAX_KERNELOPTS = 512;

/** A kernel is named, never given as a path: it is looked up in Steward's own kernel folder. */
const KERNEL_NAME = {
  regex: KERNEL_NAME_FORM,
  description: "a kernel's name: letters, digits, '.', '_', '+' or '-', without '/' or '..'",
};

/** DispVM numbers are below this, as in Qubes. */
export const MAX_DISPID = 10000;

const NOT_ADMIN: readonly VmClassName[] = VM_CLASSES.filter((c) => !c.isHost).map((c) => c.name);
const WITH_TEMPLATE: readonly VmClassName[] = VM_CLASSES.filter((c) => c.templateClass !== undefined).map((c) => c.name);
const DISPVM_BASES: readonly VmClassName[] = VM_CLASSES.filter((c) => c.dispvmBase).map((c) => c.name);
const DISPOSABLE: readonly VmClassName[] = VM_CLASSES.filter((c) => c.disposable).map((c) => c.name);
const none: DefaultSpec = { kind: "none" };
const constant = (value: PropertyValue): DefaultSpec => ({ kind: "constant", value });
const fromTemplate = (otherwise: DefaultSpec): DefaultSpec => ({ kind: "template", otherwise });
const fromGlobal = (property: string): DefaultSpec => ({ kind: "global", property });
const computed: DefaultSpec = { kind: "computed" };
const forDisposable = (then: DefaultSpec, otherwise: DefaultSpec): DefaultSpec => ({ kind: "byClass", classes: DISPOSABLE, then, otherwise });

export const VM_PROPERTIES: readonly PropertySpec[] = [
  { name: "name", type: "str", write: "read-only", default: computed, help: "The VM's name. Change it with RenameVm while the VM is halted." },
  { name: "uuid", type: "str", write: "read-only", default: computed, help: "The VM's UUID, fixed at creation." },
  { name: "qid", type: "int", write: "read-only", default: computed, help: "The VM's qube id, unique on the host; 0 is dom0." },
  { name: "klass", type: "str", write: "read-only", default: computed, help: "The VM's class: AdminVM, TemplateVM, AppVM, StandaloneVM or DispVM." },
  { name: "label", type: "label", write: "anytime", default: none, help: "The colour that marks the VM's windows." },
  {
    name: "template",
    type: "vm",
    write: "halted",
    default: fromGlobal("default_template"),
    classes: WITH_TEMPLATE,
    help: "The TemplateVM an AppVM runs from (an AppVM with template_for_dispvms for a DispVM). Changes only while halted.",
  },
  {
    name: "netvm",
    type: "vm",
    write: "anytime",
    default: computed,
    classes: NOT_ADMIN,
    help: "The VM that gives this one its network; none for no network. Defaults to default_netvm (none for TemplateVMs and for default_netvm itself).",
  },
  { name: "provides_network", type: "bool", write: "anytime", default: constant(false), classes: NOT_ADMIN, help: "Whether other VMs may use this one as their netvm." },
  { name: "ip", type: "str", write: "anytime", default: computed, classes: NOT_ADMIN, help: "The VM's IPv4 address, unique on the host: unless set, 10.137.x.y from its qid (10.138.x.y from its dispid for a DispVM). Empty while the VM has no netvm, even when set: a set address waits for one." },
  { name: "ip6", type: "str", write: "anytime", default: computed, classes: NOT_ADMIN, help: "The VM's IPv6 address, unique on the host: unless set, fd09:24ef:4179::a89:x from its qid (::a8a:x from its dispid for a DispVM), only with a netvm and the ipv6 feature on the VM or its netvm chain (empty otherwise, even when set)." },
  { name: "mac", type: "str", write: "halted", default: computed, classes: NOT_ADMIN, help: "The MAC address of the VM's network interface, 00:16:3e:5e:xx:yy from its qid unless set; unique on the host." },
  { name: "memory", type: "int", write: "anytime", default: fromTemplate(constant(400)), classes: NOT_ADMIN, min: 1, max: 1 << 20, help: "Memory the VM starts with, in MiB." },
  { name: "maxmem", type: "int", write: "anytime", default: fromTemplate(constant(4000)), classes: NOT_ADMIN, min: 0, max: 1 << 20, help: "Memory the VM may grow to, in MiB; 0 turns memory balancing off." },
  { name: "vcpus", type: "int", write: "halted", default: fromTemplate(constant(2)), classes: NOT_ADMIN, min: 1, max: 512, help: "Virtual CPUs." },
  {
    name: "kernel",
    type: "str",
    write: "halted",
    default: fromTemplate(fromGlobal("default_kernel")),
    classes: NOT_ADMIN,
    maxLength: 64,
    pattern: KERNEL_NAME,
    help: "The kernel the VM boots, by name (never a path); empty to boot the VM's own.",
  },
  {
    name: "kernelopts",
    type: "str",
    write: "halted",
    default: fromTemplate(constant("")),
    classes: NOT_ADMIN,
    maxLength: MAX_KERNELOPTS,
    help: `Extra kernel command-line options, at most ${MAX_KERNELOPTS} characters.`,
  },
  { name: "virt_mode", type: "str", write: "halted", default: fromTemplate(constant("hvm")), classes: NOT_ADMIN, choices: ["hvm", "pvh", "pv"], help: "How the VM is virtualized: hvm, pvh or pv. QEMU runs hvm." },
  { name: "autostart", type: "bool", write: "anytime", default: constant(false), classes: NOT_ADMIN, help: "Start the VM when the host starts." },
  { name: "debug", type: "bool", write: "anytime", default: constant(false), classes: NOT_ADMIN, help: "Start the VM in debug mode: a visible console, no GUI agent." },
  {
    name: "include_in_backups",
    type: "bool",
    write: "anytime",
    default: forDisposable(computed, constant(true)),
    help: "Include the VM in backups by default; not for a DispVM with auto_cleanup.",
  },
  { name: "qrexec_timeout", type: "int", write: "anytime", default: fromGlobal("default_qrexec_timeout"), classes: NOT_ADMIN, min: 0, max: 86400, help: "Seconds to wait for the guest agent at start." },
  { name: "shutdown_timeout", type: "int", write: "anytime", default: fromGlobal("default_shutdown_timeout"), classes: NOT_ADMIN, min: 0, max: 86400, help: "Seconds a shutdown may take before the VM is killed (with force) or the call fails." },
  {
    name: "default_dispvm",
    type: "vm",
    write: "anytime",
    default: forDisposable(computed, fromGlobal("default_dispvm")),
    help: "The AppVM DispVMs started from this VM are based on; none for no DispVMs. A DispVM's defaults to its own AppVM, so it never reaches another network path.",
  },
  { name: "template_for_dispvms", type: "bool", write: "anytime", default: constant(false), classes: DISPVM_BASES, help: "Whether DispVMs may be based on this AppVM." },
  { name: "default_user", type: "str", write: "anytime", default: fromTemplate(constant("user")), classes: NOT_ADMIN, help: "The user commands run as in the guest." },
  { name: "auto_cleanup", type: "bool", write: "anytime", default: constant(false), classes: DISPOSABLE, help: "Remove the DispVM when it halts." },
  {
    name: "dispid",
    type: "int",
    write: "read-only",
    default: none,
    classes: DISPOSABLE,
    min: 1,
    max: MAX_DISPID - 1,
    help: `The DispVM's number, random from 1 to ${MAX_DISPID - 1}: it names the DispVM (disp<dispid>) and gives its addresses.`,
  },
  { name: "start_time", type: "str", write: "read-only", default: computed, live: true, help: "When the VM started, as an ISO 8601 time; empty while halted." },
];

export const GLOBAL_PROPERTIES: readonly PropertySpec[] = [
  { name: "default_template", type: "vm", write: "anytime", default: constant(null), help: "The TemplateVM new AppVMs use when none is given." },
  { name: "default_netvm", type: "vm", write: "anytime", default: constant(null), help: "The netvm of VMs that do not set one; it must provide network." },
  { name: "default_dispvm", type: "vm", write: "anytime", default: constant(null), help: "The AppVM (with template_for_dispvms) DispVMs are based on by default." },
  {
    name: "default_kernel",
    type: "str",
    write: "anytime",
    default: constant(""),
    maxLength: 64,
    pattern: KERNEL_NAME,
    help: "The kernel of VMs that do not set one, by name (never a path); empty for the VMs' own.",
  },
  { name: "default_pool", type: "str", write: "anytime", default: constant(DEFAULT_POOL), help: "The pool new volumes go to; by default the one Steward made at its first start." },
  ...["root", "private", "volatile", "kernel"].map(
    (volume): PropertySpec => ({ name: `default_pool_${volume}`, type: "str", write: "anytime", default: fromGlobal("default_pool"), help: `The pool new ${volume} volumes go to.` }),
  ),
  { name: "default_qrexec_timeout", type: "int", write: "anytime", default: constant(60), min: 0, max: 86400, help: "qrexec_timeout of VMs that do not set one, in seconds." },
  { name: "default_shutdown_timeout", type: "int", write: "anytime", default: constant(60), min: 0, max: 86400, help: "shutdown_timeout of VMs that do not set one, in seconds." },
  { name: "stats_interval", type: "int", write: "anytime", default: constant(3), min: 1, max: 3600, help: "Seconds between VM statistics samples." },
  { name: "clockvm", type: "vm", write: "anytime", default: constant(null), help: "The VM the host's clock is synchronised from; none for none." },
  { name: "updatevm", type: "vm", write: "anytime", default: constant(null), help: "The VM that downloads the host's updates; none for none." },
  {
    name: "management_dispvm",
    type: "vm",
    write: "anytime",
    default: constant(null),
    help: "The AppVM (with template_for_dispvms) that DispVMs managing other VMs' configuration are based on.",
  },
  { name: "check_updates_vm", type: "bool", write: "anytime", default: constant(true), help: "Whether VMs check for their updates by default." },
];

/** Global properties that name an AppVM DispVMs are based on: it must keep template_for_dispvms. */
export const GLOBAL_DISPVM_TEMPLATES: readonly string[] = ["default_dispvm", "management_dispvm"];

/** Global properties whose value names a VM: that VM cannot be removed. */
export const GLOBAL_VM_PROPERTIES = GLOBAL_PROPERTIES.filter((p) => p.type === "vm").map((p) => p.name);

export function vmPropertySpecs(klass: VmClassName): PropertySpec[] {
  return VM_PROPERTIES.filter((spec) => !spec.classes || spec.classes.includes(klass));
}

const VM_SPECS = new Map(VM_PROPERTIES.map((spec) => [spec.name, spec]));
const GLOBAL_SPECS = new Map(GLOBAL_PROPERTIES.map((spec) => [spec.name, spec]));

/** The schema of a VM property that the code itself reads (it exists: a typo fails at once). */
export function vmSpec(name: string): PropertySpec {
  const spec = VM_SPECS.get(name);
  if (!spec) throw new Error(`no VM property ${name} in the schema`);
  return spec;
}

/** The computed VM defaults that read global properties: which globals each reads. */
const GLOBALS_OF_COMPUTED: Readonly<Record<string, readonly string[]>> = {
  netvm: ["default_netvm"],
  // A VM's addresses exist only with a netvm, which may be default_netvm.
  ip: ["default_netvm"],
  ip6: ["default_netvm"],
};

const followersOf = new Map<string, readonly PropertySpec[]>();

/**
 * The VM properties whose default may change with the global property `global`: those that
 * take it, those computed from it, and, for default_template, every property a template gives.
 */
export function vmPropertiesFollowing(global: string): readonly PropertySpec[] {
  let specs = followersOf.get(global);
  if (!specs) followersOf.set(global, (specs = VM_PROPERTIES.filter((spec) => follows(spec.default, spec.name, global))));
  return specs;
}

function follows(defaults: DefaultSpec, name: string, global: string): boolean {
  switch (defaults.kind) {
    case "global": {
      if (defaults.property === global) return true;
      const other = GLOBAL_SPECS.get(defaults.property);
      return other !== undefined && other.default.kind === "global" && other.default.property === global;
    }
    case "template":
      return global === "default_template" || follows(defaults.otherwise, name, global);
    case "byClass":
      return follows(defaults.then, name, global) || follows(defaults.otherwise, name, global);
    case "computed":
      return GLOBALS_OF_COMPUTED[name]?.includes(global) ?? false;
    default:
      return false;
  }
}

export function findVmSpec(name: string): PropertySpec | undefined {
  return VM_SPECS.get(name);
}

export function globalSpec(name: string): PropertySpec {
  const spec = GLOBAL_SPECS.get(name);
  if (!spec) throw new Error(`no global property ${name} in the schema`);
  return spec;
}

export function findGlobalSpec(name: string): PropertySpec | undefined {
  return GLOBAL_SPECS.get(name);
}
