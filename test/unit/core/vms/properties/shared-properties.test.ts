import { vmSpec } from "../../../../../src/core/vms/properties/property-schema";
import { isSharedProperty, sharedProperty } from "../../../../../src/core/vms/properties/shared-properties";

describe("sharedProperty", () => {
  it("gives one frozen object for one spec, value and default-ness", () => {
    const memory = sharedProperty(vmSpec("memory"), 400, true);
    expect(sharedProperty(vmSpec("memory"), 400, true)).toBe(memory);
    expect(memory).toEqual({ spec: vmSpec("memory"), value: 400, isDefault: true });
    expect(Object.isFrozen(memory)).toBe(true);
    expect(isSharedProperty(memory)).toBe(true);
  });

  it("tells apart values, default-ness and specs", () => {
    const memory = sharedProperty(vmSpec("memory"), 400, true);
    expect(sharedProperty(vmSpec("memory"), 400, false)).not.toBe(memory);
    expect(sharedProperty(vmSpec("memory"), 800, true)).not.toBe(memory);
    expect(sharedProperty(vmSpec("maxmem"), 400, true)).not.toBe(memory);
    // none and no value at all are different values.
    expect(sharedProperty(vmSpec("netvm"), null, true)).not.toBe(sharedProperty(vmSpec("netvm"), undefined, true));
  });

  it("stops sharing a spec whose values keep being new (uuid, ip), and gives fresh objects for it", () => {
    const spec = vmSpec("mac");
    const first = sharedProperty(spec, "00:16:3e:5e:00:00", true);
    for (let i = 1; i < 200; i++) sharedProperty(spec, `00:16:3e:5e:00:${i}`, true);
    const later = sharedProperty(spec, "00:16:3e:5e:00:00", true);
    expect(later).not.toBe(first);
    expect(later).toEqual(first);
    expect(isSharedProperty(later)).toBe(false);
    expect(Object.isFrozen(later)).toBe(false);
  });
});
