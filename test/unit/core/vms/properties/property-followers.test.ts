import { vmPropertiesFollowing } from "../../../../../src/core/vms/properties/property-schema";

const names = (global: string) => vmPropertiesFollowing(global).map((spec) => spec.name);

describe("the VM properties a global property's change may alter", () => {
  it("are those that take it, and those computed from it", () => {
    expect(names("default_kernel")).toEqual(["kernel"]);
    expect(names("default_netvm")).toEqual(["netvm", "ip", "ip6"]);
    expect(names("default_dispvm")).toEqual(["default_dispvm"]);
    expect(names("default_shutdown_timeout")).toEqual(["shutdown_timeout"]);
    expect(names("stats_interval")).toEqual([]);
  });

  it("for default_template, the template and every property a template gives", () => {
    expect(names("default_template")).toEqual(expect.arrayContaining(["template", "memory", "maxmem", "vcpus", "kernel", "kernelopts", "virt_mode", "default_user"]));
    expect(names("default_template")).not.toContain("netvm");
  });
});
