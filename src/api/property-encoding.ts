import { PropertySchema, PropertyValueSchema } from "../../gen/steward/v1/property_pb";
import { VmSchema } from "../../gen/steward/v1/vm_pb";
import type { PropertySpec } from "../core/properties/property-schema";
import type { Property } from "../core/properties/vm-properties";
import { propertyTypeOf, valueMember } from "./property-messages";
import { LENGTH_DELIMITED, VARINT, WireWriter } from "./wire-writer";

/*
 * The `properties` of a Vm message, written straight from the core's properties: a page of
 * 1,000 VMs holds 26,000 of them, and building a message object for each (and its value) for
 * protobuf-es to walk cost a third of listing them. The field numbers come from the generated
 * schemas; a test decodes what this writes, for every kind of value, and compares it with the
 * messages property-messages.ts builds, and fails when Property or PropertyValue gain a field.
 */

const VM_PROPERTIES = VmSchema.field.properties!.number;
const NAME = PropertySchema.field.name!.number;
const TYPE = PropertySchema.field.type!.number;
const VALUE = PropertySchema.field.value!.number;
const IS_DEFAULT = PropertySchema.field.isDefault!.number;
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
    nameAndType.set(spec, (bytes = Uint8Array.prototype.slice.call(out.written())));
  }
  return bytes;
}

/**
 * Each entry of Vm.properties for these properties, one after the other. The bytes are valid
 * until the next call: take a copy.
 */
export function encodeProperties(properties: readonly Property[]): Uint8Array {
  const out = scratch;
  out.reset();
  for (const property of properties) {
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
  return out.written();
}

function writeValue(out: WireWriter, property: Property): void {
  out.tag(VALUE, LENGTH_DELIMITED);
  const value = out.fork();
  const member = valueMember(property.spec);
  const no = MEMBER_NUMBER[member]!;
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

/** One buffer, written again by every encoding. */
const scratch = new WireWriter(64 * 1024);
