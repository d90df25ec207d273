import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  DefaultSource,
  PropertyType,
  WriteRule,
  type Property as PropertyMessage,
  type PropertyDescriptionSchema,
  type PropertyValue as PropertyValueMessage,
} from "../../../gen/steward/v1/property_pb";
import { propertyOutOfRange, propertyTypeMismatch, unknownVmProperty } from "../../core/vms/properties/property-errors";
import type { PropertySpec, PropertyType as DomainType, PropertyValue, WriteRule as DomainWriteRule } from "../../core/vms/properties/property-schema";
import { findVmSpec, maxLengthOf } from "../../core/vms/properties/property-schema";
import { helpRst } from "../../core/vms/properties/property-help";
import type { DefaultOrigin, Property, PropertyDescription } from "../../core/vms/properties/vm-properties";

/** Between the contract's typed property values and the core's. */

const TYPE: Readonly<Record<DomainType, PropertyType>> = {
  str: PropertyType.STR,
  int: PropertyType.INT,
  bool: PropertyType.BOOL,
  vm: PropertyType.VM,
  label: PropertyType.LABEL,
};

const MEMBER: Readonly<Record<DomainType, NonNullable<PropertyValueMessage["kind"]["case"]>>> = {
  str: "strValue",
  int: "intValue",
  bool: "boolValue",
  vm: "vmValue",
  label: "labelValue",
};

const MEMBER_FIELD: Readonly<Record<DomainType, string>> = { str: "str_value", int: "int_value", bool: "bool_value", vm: "vm_value", label: "label_value" };

const WRITE: Readonly<Record<DomainWriteRule, WriteRule>> = {
  anytime: WriteRule.ANYTIME,
  halted: WriteRule.HALTED,
  creation: WriteRule.AT_CREATION,
  "read-only": WriteRule.READ_ONLY,
};

/** The contract's type of a property. */
export function propertyTypeOf(spec: PropertySpec): PropertyType {
  return TYPE[spec.type];
}

/** The PropertyValue member that holds a value of the property's type. */
export function valueMember(spec: PropertySpec): NonNullable<PropertyValueMessage["kind"]["case"]> {
  return MEMBER[spec.type];
}

/** The value a request gives for a property, checked against the property's type. */
export function domainValue(spec: PropertySpec, message: PropertyValueMessage | undefined, field: string): PropertyValue {
  const kind = message?.kind;
  if (!kind || kind.case === undefined) throw propertyTypeMismatch(field, `a value is required: ${spec.name} takes ${MEMBER_FIELD[spec.type]}`);
  if (kind.case !== MEMBER[spec.type]) throw propertyTypeMismatch(field, `${spec.name} is of type ${spec.type}: give ${MEMBER_FIELD[spec.type]}`);
  if (kind.case === "intValue") {
    const number = Number(kind.value);
    if (!Number.isSafeInteger(number)) throw propertyOutOfRange(field, `${spec.name} is out of range`);
    return number;
  }
  if (kind.case === "vmValue") return kind.value === "" ? null : kind.value;
  return kind.value;
}

/** The initial properties of CreateVm, by name. */
export function initialValues(properties: Readonly<Record<string, PropertyValueMessage>>): Record<string, PropertyValue> {
  const values: Record<string, PropertyValue> = {};
  for (const [name, message] of Object.entries(properties)) {
    const spec = findVmSpec(name);
    if (!spec) throw unknownVmProperty(name, `properties[${name}]`);
    values[name] = domainValue(spec, message, `properties[${name}]`);
  }
  return values;
}

/*
 * Property messages are built whole, with their $typeName, rather than through create(): a
 * ListVms page in the FULL view holds tens of thousands of them.
 */

export function valueMessage(spec: PropertySpec, value: PropertyValue | undefined): PropertyValueMessage | undefined {
  if (value === undefined) return undefined;
  const member = MEMBER[spec.type];
  const kind =
    member === "intValue"
      ? { case: member, value: BigInt(value as number) }
      : member === "vmValue"
        ? { case: member, value: (value as string | null) ?? "" }
        : { case: member, value };
  return { $typeName: "steward.v1.PropertyValue", kind } as PropertyValueMessage;
}

export function propertyMessage(property: Property): PropertyMessage {
  return {
    $typeName: "steward.v1.Property",
    name: property.spec.name,
    type: TYPE[property.spec.type],
    value: valueMessage(property.spec, property.value),
    isDefault: property.isDefault,
  };
}

export function descriptionMessage(description: PropertyDescription): MessageInitShape<typeof PropertyDescriptionSchema> {
  const { spec } = description;
  return {
    name: spec.name,
    type: TYPE[spec.type],
    help: spec.help,
    defaultSource: DEFAULT_SOURCE[description.defaultOrigin],
    defaultFrom: description.defaultFrom,
    defaultValue: valueMessage(spec, description.defaultValue),
    writeRule: WRITE[spec.write],
    minValue: BigInt(spec.min ?? 0),
    maxValue: BigInt(spec.max ?? 0),
    allowedValues: [...(spec.choices ?? [])],
    maxLength: spec.type === "str" ? maxLengthOf(spec) : 0,
    format: spec.pattern?.description ?? "",
    helpRst: helpRst(spec),
  };
}

const DEFAULT_SOURCE: Readonly<Record<DefaultOrigin, DefaultSource>> = {
  none: DefaultSource.NONE,
  constant: DefaultSource.CONSTANT,
  template: DefaultSource.TEMPLATE,
  global: DefaultSource.GLOBAL,
  computed: DefaultSource.COMPUTED,
};
