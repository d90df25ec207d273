import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { PropertySchema, PropertyValueSchema } from "../../../../gen/steward/v1/property_pb";
import { VmSchema } from "../../../../gen/steward/v1/vm_pb";
import { encodeStablePart, propertyEntry } from "../../../../src/api/encoding/vm-encoding";
import { propertyMessage } from "../../../../src/api/vms/property-messages";
import { vmDescription } from "../../../../src/api/vms/vm-messages";
import { vmSpec } from "../../../../src/core/vms/properties/property-schema";
import { isSharedProperty, sharedProperty } from "../../../../src/core/vms/properties/shared-properties";
import type { Property } from "../../../../src/core/vms/properties/vm-properties";
import type { Vm } from "../../../../src/core/vms/read-model/vm-view";

const property = (name: string, value: Property["value"], isDefault = false): Property => ({ spec: vmSpec(name), value, isDefault });

const vm = (fields: Partial<Vm> = {}): Vm => ({
  qid: 7,
  uuid: "3f0c5a0e-6b1f-4d7e-9a43-0b8d7c1e2f10",
  name: "work",
  klass: "AppVM",
  state: "Halted",
  label: "blue",
  template: "debian-12",
  tags: ["created-by-dom0", "project-x"],
  createdAt: new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678)),
  updatedAt: new Date(Date.UTC(2026, 5, 6, 7, 8, 9, 10)),
  etag: '"1f2e3d"',
  runtime: undefined,
  features: { gui: "1", "service.cups": "" },
  ...fields,
});

/** What protobuf-es writes for the same message. */
const expected = (of: Vm, properties: Property[]) =>
  toBinary(VmSchema, create(VmSchema, { ...vmDescription(of), properties: properties.map(propertyMessage), features: of.features }));

describe("encodeStablePart", () => {
  const cases: [string, Vm, Property[]][] = [
    ["strings: empty, unicode, long enough for a two-byte length", vm(), [property("kernelopts", ""), property("default_user", "héllo ✓"), property("kernelopts", "x".repeat(300))]],
    ["ints: zero, large, negative", vm(), [property("memory", 0), property("maxmem", 2 ** 40), property("vcpus", -5)]],
    ["bools, both ways, default or not", vm(), [property("debug", false, true), property("autostart", true)]],
    ["vms: none and named; labels", vm(), [property("netvm", null, true), property("template", "debian-12"), property("label", "red")]],
    ["no value", vm(), [property("template", undefined, true)]],
    ["dom0: qid 0, no template, tags or features", vm({ qid: 0, name: "dom0", klass: "AdminVM", template: "", tags: [], features: {} }), [property("name", "dom0")]],
    ["a unicode feature, an empty tag", vm({ tags: [""], features: { "note ✓": "é" } }), [property("qid", 7), property("ip", "10.137.0.7")]],
  ];

  it.each(cases)("writes protobuf-es' own bytes: %s", (_, of, properties) => {
    const written = encodeStablePart(of, properties);
    expect(fromBinary(VmSchema, written)).toEqual(fromBinary(VmSchema, expected(of, properties)));
    expect(Buffer.from(written).equals(Buffer.from(expected(of, properties)))).toBe(true);
  });

  it("writes shared properties from the encoding it kept, the same bytes every time", () => {
    const shared = [sharedProperty(vmSpec("memory"), 400, true), sharedProperty(vmSpec("kernel"), "6.6", false), sharedProperty(vmSpec("netvm"), null, true)];
    expect(shared.every(isSharedProperty)).toBe(true);
    const properties = [...shared, property("ip", "10.137.0.7", true)];
    for (let time = 0; time < 3; time++) {
      expect(Buffer.from(encodeStablePart(vm(), properties)).equals(Buffer.from(expected(vm(), properties)))).toBe(true);
    }
    // The same value but not the default is another property, with its own encoding.
    const set = [sharedProperty(vmSpec("memory"), 400, false)];
    expect(Buffer.from(encodeStablePart(vm(), set)).equals(Buffer.from(expected(vm(), set)))).toBe(true);
  });

  it("gives one property's entry, kept for a shared property, made anew for another", () => {
    const entryOf = (p: Property) => toBinary(VmSchema, create(VmSchema, { properties: [propertyMessage(p)] }));
    const halted = sharedProperty(vmSpec("start_time"), "", true);
    expect(propertyEntry(halted)).toBe(propertyEntry(halted));
    expect(Buffer.from(propertyEntry(halted)).equals(Buffer.from(entryOf(halted)))).toBe(true);
    const running = property("start_time", "2026-11-21T10:00:00.000Z");
    expect(propertyEntry(running)).not.toBe(propertyEntry(running));
    expect(Buffer.from(propertyEntry(running)).equals(Buffer.from(entryOf(running)))).toBe(true);
  });

  it("writes only the first `count` properties when told", () => {
    const properties = [property("memory", 400), property("vcpus", 2), property("start_time", "")];
    expect(Buffer.from(encodeStablePart(vm(), properties, 2)).equals(Buffer.from(expected(vm(), properties.slice(0, 2))))).toBe(true);
  });

  it("knows every field of Vm, Property and PropertyValue (a new one must be written here too)", () => {
    expect(VmSchema.fields.map((f) => f.localName)).toEqual(["name", "uuid", "klass", "state", "qid", "label", "template", "tags", "properties", "features", "runtime", "createTime", "updateTime", "etag"]);
    expect(PropertySchema.fields.map((f) => f.localName)).toEqual(["name", "type", "value", "isDefault"]);
    expect(PropertyValueSchema.fields.map((f) => f.localName)).toEqual(["strValue", "intValue", "boolValue", "vmValue", "labelValue"]);
  });
});
