import { alreadyExists, declareReasons, DomainError, failedPrecondition, InvalidFieldError, notFound, quote } from "../../errors";

/** Reasons of VM and global properties: their names, types, values and the rules between VMs. */
const R = declareReasons("properties", [
  "PROPERTY_NOT_FOUND",
  "PROPERTY_READ_ONLY",
  "PROPERTY_NO_DEFAULT",
  "PROPERTY_TYPE_MISMATCH",
  "PROPERTY_OUT_OF_RANGE",
  "INVALID_PROPERTY_VALUE",
  "PROPERTY_TOO_LONG",
  "NETVM_LOOP",
  "NOT_A_NETVM",
  "NETVM_IN_USE",
  "DISPVM_TEMPLATE_IN_USE",
  "DISPVMS_RUNNING",
  "INVALID_ADDRESS",
  "ADDRESS_IN_USE",
  "INVALID_POOL_NAME",
  "MEMORY_OVER_MAXMEM",
]);

export function vmPropertyNotFound(vm: { name: string; klass: string }, property: string, field: string): DomainError {
  return notFound(R.PROPERTY_NOT_FOUND, `${vm.klass} ${vm.name} has no property ${quote(property)}`, { vm: vm.name, property: quote(property), field });
}

/** A property no VM class has (in CreateVm's properties). */
export function unknownVmProperty(property: string, field: string): DomainError {
  return notFound(R.PROPERTY_NOT_FOUND, `there is no VM property ${quote(property)}`, { property: quote(property), field });
}

export function globalPropertyNotFound(property: string): DomainError {
  return notFound(R.PROPERTY_NOT_FOUND, `there is no global property ${quote(property)}`, { property: quote(property), field: "name" });
}

export function propertyReadOnly(vm: string, property: string): DomainError {
  const hint = property === "name" ? " (use RenameVm)" : "";
  return failedPrecondition(R.PROPERTY_READ_ONLY, `${property} is read-only${hint}`, { vm, property });
}

export function propertyNoDefault(vm: string, property: string): DomainError {
  return failedPrecondition(R.PROPERTY_NO_DEFAULT, `${property} has no default to return to`, { vm, property });
}

export function propertyTypeMismatch(field: string, description: string): InvalidFieldError {
  return new InvalidFieldError(field, description, R.PROPERTY_TYPE_MISMATCH);
}

export function propertyOutOfRange(field: string, description: string): InvalidFieldError {
  return new InvalidFieldError(field, description, R.PROPERTY_OUT_OF_RANGE);
}

export function propertyTooLong(field: string, property: string, maxLength: number): InvalidFieldError {
  return new InvalidFieldError(field, `${property} is at most ${maxLength} characters`, R.PROPERTY_TOO_LONG, { limit: String(maxLength) });
}

export function invalidPropertyValue(field: string, description: string): InvalidFieldError {
  return new InvalidFieldError(field, description, R.INVALID_PROPERTY_VALUE);
}

export function netvmLoop(vm: string, netvm: string, chain: readonly string[]): DomainError {
  return failedPrecondition(R.NETVM_LOOP, `that would make a network loop: ${chain.join(" -> ")}`, { vm, netvm });
}

export function notANetvm(vm: string): DomainError {
  return failedPrecondition(R.NOT_A_NETVM, `${vm} does not provide network (provides_network is false)`, { vm });
}

export function netvmInUse(vm: string, users: readonly string[]): DomainError {
  return failedPrecondition(R.NETVM_IN_USE, `${vm} is the netvm of ${users.join(", ")}`, { vm, used_by: users.join(",") });
}

export function dispvmTemplateInUse(vm: string, users: readonly string[]): DomainError {
  return failedPrecondition(R.DISPVM_TEMPLATE_IN_USE, `DispVMs are based on ${vm} for ${users.join(", ")}`, { vm, used_by: users.join(",") });
}

/** DispVMs are based on the AppVM: it keeps template_for_dispvms while they exist. */
export function dispvmsBasedOnIt(vm: string, dispvms: readonly string[]): DomainError {
  return failedPrecondition(R.DISPVM_TEMPLATE_IN_USE, `${vm} is the AppVM of the DispVMs ${dispvms.join(", ")}`, { vm, used_by: dispvms.join(",") });
}

/** The AppVM's template does not change under the DispVMs based on it that run. */
export function dispvmsRunning(vm: string, dispvms: readonly string[]): DomainError {
  return failedPrecondition(R.DISPVMS_RUNNING, `the template of ${vm} does not change while DispVMs based on it run: ${dispvms.join(", ")}`, {
    vm,
    running: dispvms.join(","),
  });
}

export function invalidAddress(kind: string): InvalidFieldError {
  return new InvalidFieldError("value", `not a valid ${kind} address`, R.INVALID_ADDRESS);
}

export function addressInUse(value: string, kind: string, holder: string): DomainError {
  return alreadyExists(R.ADDRESS_IN_USE, `${value} is the ${kind} of ${holder}`, { vm: holder, [kind]: value });
}

export function invalidPoolName(field = "value"): InvalidFieldError {
  return new InvalidFieldError(field, "pool names start with a letter, then letters, digits, '_', '.' or '-', at most 63 characters", R.INVALID_POOL_NAME);
}

/** memory would exceed maxmem (which, unless 0 for no balancing, bounds it). */
/** A request that gives both memory and maxmem, memory the greater: a bad combination of fields (AIP-193). */
export function memoryOverMaxmemAsked(memory: number, maxmem: number): InvalidFieldError {
  return new InvalidFieldError("properties[memory]", `${memory} MiB is more than the maxmem of ${maxmem} MiB the same request gives`, R.MEMORY_OVER_MAXMEM, {
    memory: String(memory),
    maxmem: String(maxmem),
  });
}

export function memoryOverMaxmem(vm: string, memory: number, maxmem: number): DomainError {
  return failedPrecondition(R.MEMORY_OVER_MAXMEM, `${vm} would start with ${memory} MiB of memory, more than its maxmem of ${maxmem} MiB`, {
    vm,
    memory: String(memory),
    maxmem: String(maxmem),
  });
}
