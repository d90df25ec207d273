import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { PropertySchema, PropertyValueSchema } from "../../../gen/steward/v1/property_pb";
import { VmSchema } from "../../../gen/steward/v1/vm_pb";
import { encodeProperties } from "../../../src/api/property-encoding";
import { propertyMessage } from "../../../src/api/property-messages";
import { vmSpec } from "../../../src/core/properties/property-schema";
import type { Property } from "../../../src/core/properties/vm-properties";

const property = (name: string, value: Property["value"], isDefault = false): Property => ({ spec: vmSpec(name), value, isDefault });

describe("encodeProperties", () => {
  const cases: [string, Property[]][] = [
    ["strings: empty, unicode, long enough for a two-byte length", [property("kernelopts", ""), property("default_user", "héllo ✓"), property("kernelopts", "x".repeat(300))]],
    ["ints: zero, large, negative", [property("memory", 0), property("maxmem", 2 ** 40), property("vcpus", -5)]],
    ["bools, both ways, default or not", [property("debug", false, true), property("autostart", true)]],
    ["vms: none and named; labels", [property("netvm", null, true), property("template", "debian-12"), property("label", "red")]],
    ["no value", [property("template", undefined, true)]],
    ["a whole list, in order", [property("name", "work"), property("qid", 7), property("ip", "10.137.0.7"), property("provides_network", false, true)]],
  ];

  it.each(cases)("writes what protobuf-es writes for the same messages: %s", (_, properties) => {
    const expected = toBinary(VmSchema, create(VmSchema, { properties: properties.map(propertyMessage) }));
    const written = encodeProperties(properties);
    expect(fromBinary(VmSchema, written)).toEqual(fromBinary(VmSchema, expected));
    expect(Buffer.from(written).equals(Buffer.from(expected))).toBe(true);
  });

  it("knows every field of Property and PropertyValue (a new one must be written here too)", () => {
    expect(PropertySchema.fields.map((f) => f.localName)).toEqual(["name", "type", "value", "isDefault"]);
    expect(PropertyValueSchema.fields.map((f) => f.localName)).toEqual(["strValue", "intValue", "boolValue", "vmValue", "labelValue"]);
  });
});
