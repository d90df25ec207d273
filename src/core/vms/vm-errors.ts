import { alreadyExists, declareReasons, DomainError, failedPrecondition, InvalidFieldError, notFound, quote } from "../errors";
import type { PowerState } from "../model/power-state";
import { vmClass, type VmClassName } from "../model/vm-classes";

/** Reasons of VMs: finding, naming, creating, cloning, removing them, and their attributes. */
const R = declareReasons("vms", [
  "VM_NOT_FOUND",
  "VM_EXISTS",
  "INVALID_VOLUME_NAME",
  "VM_UUID_IN_USE",
  "INVALID_UUID",
  "VM_IS_ADMIN",
  "VM_IS_DISPOSABLE",
  "VM_NOT_HALTED",
  "VM_IN_USE",
  "INVALID_VM_NAME",
  "INVALID_VM_REF",
  "INVALID_VM_CLASS",
  "INVALID_POWER_STATE",
  "NO_TEMPLATE",
  "NOT_A_TEMPLATE",
  "NOT_A_DISPVM_TEMPLATE",
  "NO_DEFAULT_DISPVM",
  "NO_FREE_DISPID",
  "POOL_CONFLICT",
  "POOL_NOT_FOUND",
  "REQUEST_RESULT_GONE",
  "LABEL_NOT_FOUND",
  "LABEL_EXISTS",
  "LABEL_BUILTIN",
  "LABEL_IN_USE",
  "INVALID_LABEL_NAME",
  "INVALID_COLOR",
  "INVALID_TAG",
  "TAG_RESERVED",
  "INVALID_FEATURE_NAME",
  "INVALID_FEATURE_VALUE",
  "TOO_MANY_FEATURES",
  "FEATURES_TOO_LARGE",
  "TOO_MANY_TAGS",
  "TOO_MANY_LABELS",
  "INVALID_FEATURE_SCOPE",
  "FEATURE_NOT_FOUND",
  "NOTES_TOO_LONG",
  "INVALID_NOTES",
  "ETAG_MISMATCH",
  "INVALID_ETAG",
]);

interface Named {
  name: string;
}

export function vmNotFound(ref: string, field = "vm"): DomainError {
  return notFound(R.VM_NOT_FOUND, `no VM ${ref.startsWith("uuid:") ? "with " + ref : "named " + ref}`, { vm: ref, field });
}

/** A VM a property value names does not exist. */
export function namedVmNotFound(name: string, field: string): DomainError {
  return notFound(R.VM_NOT_FOUND, `no VM named ${quote(name)}`, { vm: quote(name), field });
}

export function vmExists(name: string): DomainError {
  return alreadyExists(R.VM_EXISTS, `a VM named ${name} exists`, { vm: name });
}

/** Another VM of this name (or of it but for case) is being made. */
export function vmBeingMade(name: string, making: string): DomainError {
  return alreadyExists(R.VM_EXISTS, making === name ? `a VM named ${name} is being made` : `cannot name a VM ${name}: a VM named ${making} is being made, and VM names differ in more than case`, { vm: making });
}

export function vmExistsButForCase(name: string, existing: string): DomainError {
  return alreadyExists(R.VM_EXISTS, `cannot name a VM ${name}: a VM named ${existing} exists, and VM names are host names, which differ in more than case`, {
    vm: existing,
  });
}

/** The AdminVM cannot be `action` (started, removed, cloned…). */
export function vmIsAdmin(vm: Named, action: string): DomainError {
  return failedPrecondition(R.VM_IS_ADMIN, `${vm.name} is the AdminVM and cannot be ${action}`, { vm: vm.name });
}

export function vmIsDisposable(vm: Named, action: string): DomainError {
  return failedPrecondition(R.VM_IS_DISPOSABLE, `${vm.name} is a DispVM and cannot be ${action}`, { vm: vm.name });
}

/** What the class of `vm` does not allow: the AdminVM's reason, or a DispVM's. */
export function vmClassRefuses(vm: Named & { klass: VmClassName }, action: string): DomainError {
  return vmClass(vm.klass).disposable ? vmIsDisposable(vm, action) : vmIsAdmin(vm, action);
}

export function vmNotHalted(vm: Named, state: PowerState, toBe: string): DomainError {
  return failedPrecondition(R.VM_NOT_HALTED, `${vm.name} is ${state}: only a halted VM can be ${toBe}`, { vm: vm.name, state });
}

/** A property that changes only while the VM is halted. */
export function propertyNeedsHalted(vm: Named, property: string, state: PowerState): DomainError {
  return failedPrecondition(R.VM_NOT_HALTED, `${property} of ${vm.name} changes only while it is halted; it is ${state}`, { vm: vm.name, property, state });
}

/** Other VMs or global properties name the VM. */
export function vmInUse(vm: Named, users: readonly string[]): DomainError {
  const described = users.join(", ");
  return failedPrecondition(R.VM_IN_USE, `${vm.name} is used by ${described}`, { vm: vm.name, used_by: described });
}

/** Running VMs use the VM as their netvm. */
export function netvmInUseByRunning(vm: Named, users: readonly string[]): DomainError {
  const names = users.join(", ");
  return failedPrecondition(R.VM_IN_USE, `${vm.name} is the netvm of running ${names}; shut them down first, or use force`, { vm: vm.name, used_by: names });
}

export function invalidVmName(field: string, description: string): InvalidFieldError {
  return new InvalidFieldError(field, description, R.INVALID_VM_NAME);
}

export function invalidVmRef(field: string): InvalidFieldError {
  return new InvalidFieldError(field, "expected uuid:xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", R.INVALID_VM_REF);
}

export function invalidUuid(field: string, description: string): InvalidFieldError {
  return new InvalidFieldError(field, description, R.INVALID_UUID);
}

export function vmUuidInUse(uuid: string, by: string): DomainError {
  return alreadyExists(R.VM_UUID_IN_USE, `the uuid ${uuid} is ${by}`, { uuid });
}

/** A volume name a VM does not have (CreateVm's volumes and volume_pools). */
export function invalidVolumeName(field: string, name: string, names: readonly string[]): InvalidFieldError {
  return new InvalidFieldError(field, `${JSON.stringify(name)} names no volume: a VM's volumes are ${names.join(", ")}`, R.INVALID_VOLUME_NAME);
}

export function invalidVmClass(field: string, description: string): InvalidFieldError {
  return new InvalidFieldError(field, description, R.INVALID_VM_CLASS);
}

export function invalidPowerState(field: string, state: number): InvalidFieldError {
  return new InvalidFieldError(field, `unknown power state ${state}`, R.INVALID_POWER_STATE);
}

export function noTemplateGiven(klass: VmClassName): DomainError {
  return failedPrecondition(R.NO_TEMPLATE, `an ${klass} needs a template: none was given, and default_template is not set`);
}

/** A value that would leave a VM that needs a template without one. */
export function templateRequired(field: string): InvalidFieldError {
  return new InvalidFieldError(field, "an AppVM or DispVM needs a template", R.NO_TEMPLATE);
}

/** A change would leave a VM whose class needs a template without one. */
export function templateMissing(vm: Named): DomainError {
  return failedPrecondition(R.NO_TEMPLATE, `${vm.name} would have no template, and its class needs one`, { vm: vm.name });
}

export function noTemplateToStart(vm: Named): DomainError {
  return failedPrecondition(R.NO_TEMPLATE, `${vm.name} has no template to start from`, { vm: vm.name });
}

export function notATemplate(template: Named & { klass: VmClassName }, key = "template"): DomainError {
  return failedPrecondition(R.NOT_A_TEMPLATE, `${template.name} is a ${template.klass}, not a TemplateVM`, { [key]: template.name });
}

export function notADispvmTemplate(vm: Named): DomainError {
  return failedPrecondition(R.NOT_A_DISPVM_TEMPLATE, `${vm.name} is not an AppVM with template_for_dispvms`, { vm: vm.name });
}

export function noDefaultDispvm(): DomainError {
  return failedPrecondition(R.NO_DEFAULT_DISPVM, "no template was given, and default_dispvm is not set");
}

/** Every DispVM number is in use, or retained by the event log. */
export function noFreeDispid(max: number): DomainError {
  return new DomainError("resource-exhausted", R.NO_FREE_DISPID, `no DispVM number from 1 to ${max - 1} is free: remove DispVMs, or wait for the event log to drop old ones`, {
    max: String(max - 1),
  });
}

/** A malformed combination of fields (AIP-193): INVALID_ARGUMENT. */
export function poolConflict(): InvalidFieldError {
  return new InvalidFieldError("volume_pools", "give pool or volume_pools, not both", R.POOL_CONFLICT);
}

export function poolNotFound(pool: string): DomainError {
  return notFound(R.POOL_NOT_FOUND, `no pool named ${quote(pool)}`, { pool: quote(pool) });
}

/** What a retried request made the first time (a VM, a label) has been removed since. */
export function requestResultGone(requestId: string, what = "VM"): DomainError {
  return failedPrecondition(R.REQUEST_RESULT_GONE, `the ${what} that request ${requestId} made has been removed since`, { request_id: requestId });
}

export function labelNameRequired(field: string): InvalidFieldError {
  return new InvalidFieldError(field, "a label name is required");
}

export function labelNotFound(label: string, field?: string): DomainError {
  return notFound(R.LABEL_NOT_FOUND, `no label named ${quote(label)}`, field === undefined ? { label: quote(label) } : { label: quote(label), field });
}

export function labelExists(label: string): DomainError {
  return alreadyExists(R.LABEL_EXISTS, `a label named ${label} exists`, { label });
}

export function labelBuiltin(label: string): DomainError {
  return failedPrecondition(R.LABEL_BUILTIN, `${label} is a built-in label and cannot be removed`, { label });
}

export function labelInUse(label: string, vms: readonly string[]): DomainError {
  return failedPrecondition(R.LABEL_IN_USE, `label ${label} is used by ${vms.join(", ")}`, { label, vms: vms.join(",") });
}

export function invalidLabelName(maxLength: number): InvalidFieldError {
  return new InvalidFieldError(
    "name",
    `label names are a lowercase letter, then lowercase letters, digits, '_' or '-', at most ${maxLength} characters`,
    R.INVALID_LABEL_NAME,
    { limit: String(maxLength) },
  );
}

export function invalidColor(): InvalidFieldError {
  return new InvalidFieldError("color", "expected a colour as 0xRRGGBB or #RRGGBB", R.INVALID_COLOR);
}

export function invalidTag(): InvalidFieldError {
  return new InvalidFieldError("tag", "tags are 1 to 255 of letters, digits, '_', '.', ':' or '-'", R.INVALID_TAG, { limit: "255" });
}

export function tagReserved(tag: string, prefix: string): DomainError {
  return new DomainError("permission-denied", R.TAG_RESERVED, `${prefix}* tags are set by Steward on the VMs a caller makes; no request sets or removes them`, {
    tag: quote(tag),
    field: "tag",
  });
}

export function invalidFeatureName(): InvalidFieldError {
  return new InvalidFieldError("name", "feature names are 1 to 255 printable ASCII characters without spaces", R.INVALID_FEATURE_NAME);
}

export function invalidFeatureValue(maxBytes: number): InvalidFieldError {
  return new InvalidFieldError("value", `feature values are text of at most ${maxBytes} bytes (UTF-8), without NUL`, R.INVALID_FEATURE_VALUE, {
    limit: String(maxBytes),
  });
}

export function tooManyFeatures(max: number): InvalidFieldError {
  return new InvalidFieldError("name", `a VM has at most ${max} features: remove one first`, R.TOO_MANY_FEATURES, { limit: String(max) });
}

export function featuresTooLarge(maxBytes: number): InvalidFieldError {
  return new InvalidFieldError("value", `a VM's features hold at most ${maxBytes} bytes, names and values together`, R.FEATURES_TOO_LARGE, {
    limit: String(maxBytes),
  });
}

export function tooManyLabels(max: number): InvalidFieldError {
  return new InvalidFieldError("name", `the host has at most ${max} labels: remove one first`, R.TOO_MANY_LABELS, { limit: String(max) });
}

export function tooManyTags(max: number): InvalidFieldError {
  return new InvalidFieldError("tag", `a VM has at most ${max} tags: remove one first`, R.TOO_MANY_TAGS, { limit: String(max) });
}

export function invalidFeatureScope(scope: number): InvalidFieldError {
  return new InvalidFieldError("scope", `unknown feature scope ${scope}`, R.INVALID_FEATURE_SCOPE);
}

export function featureNotFound(vm: string, feature: string): DomainError {
  return notFound(R.FEATURE_NOT_FOUND, `${vm} has no feature ${quote(feature)}`, { vm, feature: quote(feature) });
}

export function notesTooLong(maxBytes: number): InvalidFieldError {
  return new InvalidFieldError("notes", `notes are at most ${maxBytes} bytes`, R.NOTES_TOO_LONG, { limit: String(maxBytes) });
}

export function invalidNotes(): InvalidFieldError {
  return new InvalidFieldError("notes", "notes are text: no control characters but tab and newline, no bidirectional overrides or isolates", R.INVALID_NOTES);
}

/** A mutation's etag precondition failed: the VM changed since the caller read it (AIP-154). */
export function etagMismatch(vm: string, expected: string): DomainError {
  return new DomainError("aborted", R.ETAG_MISMATCH, `${vm} has changed since it was read (its etag is no longer ${quote(expected)}); read it again and retry`, {
    vm,
    field: "etag",
  });
}

export function invalidEtag(etag: string): InvalidFieldError {
  return new InvalidFieldError("etag", `${quote(etag)} is not an etag Steward gave (a quoted hex number, as Vm.etag)`, R.INVALID_ETAG);
}
