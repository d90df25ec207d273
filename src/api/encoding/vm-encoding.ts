import { PropertySchema, PropertyValueSchema } from "../../../gen/steward/v1/property_pb";
import { VmSchema } from "../../../gen/steward/v1/vm_pb";
import type { PropertySpec } from "../../core/vms/properties/property-schema";
import { isSharedProperty } from "../../core/vms/properties/shared-properties";
import type { Property } from "../../core/vms/properties/vm-properties";
import type { Vm } from "../../core/vms/read-model/vm-view";
import { propertyTypeOf, valueMember } from "../vms/property-messages";
import { vmDescription } from "../vms/vm-messages";
import { LENGTH_DELIMITED, VARINT, WireWriter } from "./wire-writer";

/*
 * The stable part of a Vm message (everything but its state, runtime and live properties),
 * written straight from the core's view: a page of 1,000 VMs holds 26,000 properties, and
 * building a message object for each (and its value) for protobuf-es to walk cost two thirds
 * of listing them anew. The field numbers come from the generated schemas; a test checks that
 * the bytes are protobuf-es' own for every kind of value, and fails when Vm, Property or
 * PropertyValue gain a field.
 */

const VM = VmSchema.field;
const VM_PROPERTIES = VM.properties.number;
const NAME = PropertySchema.field.name.number;
const TYPE = PropertySchema.field.type.number;
const VALUE = PropertySchema.field.value.number;
const IS_DEFAULT = PropertySchema.field.isDefault.number;
const MEMBER_NUMBER = Object.fromEntries(PropertyValueSchema.fields.map((field) => [field.localName, field.number])) as Record<string, number>;

/** Each spec's name and type fields, encoded once. */
const nameAndType = new Map<PropertySpec, Uint8Array>();

function nameAndTypeOf(spec: PropertySpec): Uint8Array {
  let bytes = nameAndType.get(spec);
  if (!bytes) {
    const out = new WireWriter(64);
    out.tag(NAME, LENGTH_DELIMITED);
    out.string(spec.name);
    out.tag(TYPE, VARINT);
    out.varint(propertyTypeOf(spec));
    nameAndType.set(spec, (bytes = out.copyWritten()));
  }
  return bytes;
}

/**
 * The VM's fields but its state and runtime, with the first `count` of these properties (those
 * the store decides) and its features, in protobuf-es' order. The bytes are valid until the
 * next call: take a copy.
 */
export function encodeStablePart(vm: Vm, properties: readonly Property[], count = properties.length): Uint8Array {
  const out = scratch;
  out.reset();
  const description = vmDescription(vm);
  stringField(out, VM.name.number, description.name);
  stringField(out, VM.uuid.number, description.uuid);
  varintField(out, VM.klass.number, description.klass);
  varintField(out, VM.qid.number, description.qid);
  stringField(out, VM.label.number, description.label);
  stringField(out, VM.template.number, description.template);
  for (const tag of description.tags) {
    out.tag(VM.tags.number, LENGTH_DELIMITED);
    out.string(tag);
  }
  writeProperties(out, properties, count);
  for (const [key, value] of Object.entries(vm.features!)) {
    // A map entry: the key is field 1, the value field 2, both always written.
    out.tag(VM.features.number, LENGTH_DELIMITED);
    const entry = out.fork();
    out.tag(1, LENGTH_DELIMITED);
    out.string(key);
    out.tag(2, LENGTH_DELIMITED);
    out.string(value);
    out.join(entry);
  }
  timestampField(out, VM.createTime.number, vm.createdAt);
  timestampField(out, VM.updateTime.number, vm.updatedAt);
  stringField(out, VM.etag.number, vm.etag);
  return out.written();
}

/** A google.protobuf.Timestamp field, as protobuf-es writes it (zero members left out). */
function timestampField(out: WireWriter, no: number, time: Date): void {
  const ms = time.getTime();
  const seconds = Math.floor(ms / 1000);
  out.tag(no, LENGTH_DELIMITED);
  const start = out.fork();
  varintField(out, 1, seconds);
  varintField(out, 2, (ms - seconds * 1000) * 1_000_000);
  out.join(start);
}

/**
 * The Vm.properties entry of one property (a live one, say), to keep: a shared property's is
 * encoded once and the same bytes come back every time.
 */
export function propertyEntry(property: Property): Uint8Array {
  return sharedEntry(property) ?? encodeEntry(property);
}

/** A string field; empty ones are left out, as proto3 does. */
function stringField(out: WireWriter, no: number, text: string): void {
  if (text === "") return;
  out.tag(no, LENGTH_DELIMITED);
  out.string(text);
}

/** A varint field; zero is left out, as proto3 does. */
function varintField(out: WireWriter, no: number, value: number): void {
  if (value === 0) return;
  out.tag(no, VARINT);
  out.varint(value);
}

/** The encoded Vm.properties entries of shared properties (see shared-properties.ts). */
const sharedEntries = new WeakMap<Property, Uint8Array>();

/** A shared property's encoded entry, made the first time it is asked for; undefined for others. */
function sharedEntry(property: Property): Uint8Array | undefined {
  let bytes = sharedEntries.get(property);
  if (!bytes && isSharedProperty(property)) sharedEntries.set(property, (bytes = encodeEntry(property)));
  return bytes;
}

/** One property's Vm.properties entry, in bytes of its own. */
function encodeEntry(property: Property): Uint8Array {
  entryWriter.reset();
  writeProperty(entryWriter, property);
  return entryWriter.copyWritten();
}

function writeProperties(out: WireWriter, properties: readonly Property[], count: number): void {
  for (let i = 0; i < count; i++) {
    const property = properties[i];
    const kept = sharedEntry(property);
    if (kept) out.bytes(kept);
    else writeProperty(out, property);
  }
}

function writeProperty(out: WireWriter, property: Property): void {
  out.tag(VM_PROPERTIES, LENGTH_DELIMITED);
  const entry = out.fork();
  out.bytes(nameAndTypeOf(property.spec));
  if (property.value !== undefined) writeValue(out, property);
  if (property.isDefault) {
    out.tag(IS_DEFAULT, VARINT);
    out.varint(1);
  }
  out.join(entry);
}

function writeValue(out: WireWriter, property: Property): void {
  out.tag(VALUE, LENGTH_DELIMITED);
  const value = out.fork();
  const member = valueMember(property.spec);
  const no = MEMBER_NUMBER[member];
  switch (member) {
    case "intValue":
      out.tag(no, VARINT);
      out.int64(property.value as number);
      break;
    case "boolValue":
      out.tag(no, VARINT);
      out.varint(property.value ? 1 : 0);
      break;
    default:
      // str, vm (none is ""), label: a oneof member is written even when empty.
      out.tag(no, LENGTH_DELIMITED);
      out.string((property.value as string | null) ?? "");
  }
  out.join(value);
}

/** One buffer, written again by every encoding of a VM. */
const scratch = new WireWriter(64 * 1024);
/** Another for one property's entry, which may be made in the middle of a VM's encoding. */
const entryWriter = new WireWriter(1024);
