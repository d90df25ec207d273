import type { DescField, DescMessage } from "@bufbuild/protobuf";
import { reflect, type ReflectMessage } from "@bufbuild/protobuf/reflect";

/** What a request acts on, as a policy would select calls by. */
export interface CallTarget {
  /**
   * The VMs it names: its vm, source_vm, template, backend_vm and frontend_vm fields, a backup's
   * vms, the VMs of its volume references.
   */
  vms: string[];
  /** The pools it names: its pool fields, and the pools of its volume references. */
  pools: string[];
  /** The volumes it names (VolumeRef fields: volume, source, target). */
  volumes: VolumeTarget[];
}

/** A VolumeRef: by `vm` and `name`, or by `pool` and `vid`. */
export interface VolumeTarget {
  vm: string;
  name: string;
  pool: string;
  vid: string;
}

/** Fields that name a VM: a VM's name, or `uuid:<uuid>`. */
const VM_FIELDS = new Set(["vm", "source_vm", "template", "backend_vm", "frontend_vm"]);
const VM_LIST_FIELDS = new Set(["vms"]);
const POOL_FIELDS = new Set(["pool"]);
const VOLUME_REF = "steward.v1.VolumeRef";

/** How one kind of request names its targets: which of its fields to read, found once per message type. */
interface TargetFields {
  vm: readonly DescField[];
  vmList: readonly DescField[];
  pool: readonly DescField[];
  volume: readonly DescField[];
  /** Message fields that may hold more targets (a oneof's header, say). */
  nested: readonly DescField[];
}

const fieldsOf = new WeakMap<DescMessage, TargetFields>();

/**
 * The targets of a request, read by its descriptor: the same code serves every RPC, so the
 * authorization that comes later is one interceptor for all of them.
 */
export function targetOf(schema: DescMessage, message: unknown): CallTarget {
  const target: CallTarget = { vms: [], pools: [], volumes: [] };
  collect(reflect(schema, message as never), target, 0);
  return target;
}

/** Nested messages are read this deep at most: a request's targets are near its top. */
const MAX_DEPTH = 3;

function collect(message: ReflectMessage, target: CallTarget, depth: number): void {
  const fields = targetFields(message.desc);
  for (const field of fields.vm) pushText(target.vms, message.get(field));
  for (const field of fields.vmList) for (const vm of message.get(field) as Iterable<unknown>) pushText(target.vms, vm);
  for (const field of fields.pool) pushText(target.pools, message.get(field));
  for (const field of fields.volume) {
    if (!message.isSet(field)) continue;
    const ref = message.get(field) as ReflectMessage;
    const volume = { vm: text(ref, "vm"), name: text(ref, "name"), pool: text(ref, "pool"), vid: text(ref, "vid") };
    target.volumes.push(volume);
    pushText(target.vms, volume.vm);
    pushText(target.pools, volume.pool);
  }
  if (depth >= MAX_DEPTH) return;
  for (const field of fields.nested) if (message.isSet(field)) collect(message.get(field) as ReflectMessage, target, depth + 1);
}

function targetFields(desc: DescMessage): TargetFields {
  let found = fieldsOf.get(desc);
  if (!found) {
    const scalars = desc.fields.filter((f) => f.fieldKind === "scalar");
    const messages = desc.fields.filter((f) => f.fieldKind === "message");
    found = {
      vm: scalars.filter((f) => VM_FIELDS.has(f.name)),
      vmList: desc.fields.filter((f) => f.fieldKind === "list" && f.listKind === "scalar" && VM_LIST_FIELDS.has(f.name)),
      pool: scalars.filter((f) => POOL_FIELDS.has(f.name)),
      volume: messages.filter((f) => f.message.typeName === VOLUME_REF),
      nested: messages.filter((f) => f.message.typeName !== VOLUME_REF && f.message.typeName.startsWith("steward.v1.")),
    };
    fieldsOf.set(desc, found);
  }
  return found;
}

function text(message: ReflectMessage, name: string): string {
  const field = message.desc.fields.find((f: DescField) => f.name === name);
  const value: unknown = field ? message.get(field) : undefined;
  return typeof value === "string" ? value : "";
}

function pushText(list: string[], value: unknown): void {
  if (typeof value === "string" && value !== "" && !list.includes(value)) list.push(value);
}
