import { create, type DescMessage } from "@bufbuild/protobuf";
import { BackupService } from "../../../../gen/steward/v1/backup_service_pb";
import { BlockExportService } from "../../../../gen/steward/v1/block_export_service_pb";
import { DeviceService } from "../../../../gen/steward/v1/device_service_pb";
import { EventService } from "../../../../gen/steward/v1/event_service_pb";
import { FirewallService } from "../../../../gen/steward/v1/firewall_service_pb";
import { HostService } from "../../../../gen/steward/v1/host_service_pb";
import { PoolService } from "../../../../gen/steward/v1/pool_service_pb";
import { VmService } from "../../../../gen/steward/v1/vm_service_pb";
import { CloneVolumeRequestSchema, ImportVolumeRequestSchema, VolumeService } from "../../../../gen/steward/v1/volume_service_pb";
import { targetOf } from "../../../../src/server/interceptors/call-target";

const SERVICES = [HostService, VmService, PoolService, VolumeService, BlockExportService, FirewallService, DeviceService, EventService, BackupService];
/** A request of `input` with its field `name` set to `value`, in its oneof when it is in one. */
function withField(input: DescMessage, name: string, value: unknown) {
  const field = input.fields.find((f) => f.name === name)!;
  return create(input, (field.oneof ? { [field.oneof.localName]: { case: field.localName, value } } : { [field.localName]: value }) as never);
}

const METHODS = SERVICES.flatMap((service) => service.methods.map((method) => [`${service.name}/${method.name}`, method.input] as [string, DescMessage]));

describe("a call's target, read from its request by descriptor", () => {
  it.each(METHODS.filter(([, input]) => input.field.vm?.fieldKind === "scalar"))("%s names its vm", (_, input) => {
    expect(targetOf(input, withField(input, "vm", "work")).vms).toContain("work");
  });

  it.each(METHODS.filter(([, input]) => input.field.pool?.fieldKind === "scalar"))("%s names its pool", (_, input) => {
    expect(targetOf(input, withField(input, "pool", "fast")).pools).toContain("fast");
  });

  it.each(METHODS.filter(([, input]) => input.field.volume?.message?.typeName === "steward.v1.VolumeRef"))("%s names its volume, and the volume's VM", (_, input) => {
    const target = targetOf(input, withField(input, "volume", create(input.field.volume.message!, { vm: "work", name: "private" })));
    expect(target.volumes).toEqual([{ vm: "work", name: "private", pool: "", vid: "" }]);
    expect(target.vms).toEqual(["work"]);
  });

  it("reads both volumes of a clone, and a volume inside a oneof's header", () => {
    const clone = targetOf(CloneVolumeRequestSchema, create(CloneVolumeRequestSchema, { source: { pool: "a", vid: "x" }, target: { vm: "work", name: "root" } }));
    expect(clone).toEqual({ vms: ["work"], pools: ["a"], volumes: [{ vm: "", name: "", pool: "a", vid: "x" }, { vm: "work", name: "root", pool: "", vid: "" }] });
    const header = create(ImportVolumeRequestSchema, { kind: { case: "header", value: { target: { case: "volume", value: { vm: "work", name: "private" } } } } });
    expect(targetOf(ImportVolumeRequestSchema, header).vms).toEqual(["work"]);
  });

  it("names nothing for a request about the host", () => {
    const input = HostService.method.getHostInfo.input;
    expect(targetOf(input, create(input))).toEqual({ vms: [], pools: [], volumes: [] });
  });

  it("covers every RPC that names a VM by a field of its own", () => {
    // A request with a vm field that targetOf does not read would escape a policy.
    const withVm = METHODS.filter(([, input]) => input.fields.some((f) => f.name === "vm"));
    expect(withVm.length).toBeGreaterThan(40);
    for (const [name, input] of withVm) {
      if (input.fields.find((f) => f.name === "vm")!.fieldKind !== "scalar") continue;
      expect([name, targetOf(input, withField(input, "vm", "x")).vms]).toEqual([name, ["x"]]);
    }
  });
});
