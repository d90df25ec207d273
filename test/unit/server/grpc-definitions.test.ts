import { create, toBinary } from "@bufbuild/protobuf";
import { GetHostInfoRequestSchema, HostService } from "../../../gen/steward/v1/host_service_pb";
import { ImportVolumeRequestSchema, VolumeService } from "../../../gen/steward/v1/volume_service_pb";
import { CreateVmRequestSchema, ListVmsResponseSchema, VmService } from "../../../gen/steward/v1/vm_service_pb";
import { encodedResponse, locateBadField, MalformedMessage, methodDefinition, serviceDefinition } from "../../../src/server/grpc-definitions";

describe("service definitions from descriptors", () => {
  it("gives each RPC its path and stream kinds", () => {
    const definition = serviceDefinition(VolumeService);
    expect(definition.getVolume).toMatchObject({ path: "/steward.v1.VolumeService/GetVolume", requestStream: false, responseStream: false });
    expect(definition.importVolume).toMatchObject({ requestStream: true, responseStream: false });
    expect(definition.exportVolume).toMatchObject({ requestStream: false, responseStream: true });
    expect(serviceDefinition(VmService).console).toMatchObject({ requestStream: true, responseStream: true });
    expect(Object.keys(serviceDefinition(HostService))).toHaveLength(HostService.methods.length);
  });

  it("round-trips a request through its serializers", () => {
    const method = methodDefinition(VmService.method.createVm);
    const request = create(CreateVmRequestSchema, { name: "work", label: "red", requestId: "r1" });
    const bytes = method.requestSerialize(request);
    expect(method.requestDeserialize(bytes)).toEqual(request);
  });

  it("marks undecodable bytes instead of throwing, naming the field at fault", () => {
    const method = methodDefinition(VmService.method.createVm);
    const good = toBinary(CreateVmRequestSchema, create(CreateVmRequestSchema, { name: "work", label: "red" }));
    // Cut the last field (label = 3) in the middle of its bytes.
    const decoded = method.requestDeserialize(Buffer.from(good.subarray(0, good.length - 1)));
    expect(decoded).toBeInstanceOf(MalformedMessage);
    expect((decoded as MalformedMessage).field).toBe("label");
    expect(methodDefinition(HostService.method.getHostInfo).requestDeserialize(Buffer.from([0xff]))).toBeInstanceOf(MalformedMessage);
  });

  it("descends into message fields to find the fault", () => {
    const header = toBinary(ImportVolumeRequestSchema, create(ImportVolumeRequestSchema, { kind: { case: "header", value: { target: { case: "volume", value: { vm: "work", name: "private" } } } } }));
    // The nested header → volume → name string claims more bytes than the buffer of volume has:
    // rewrite the inner length of `name` (last byte before "private") to be too long.
    const bytes = Buffer.from(header);
    const nameLengthAt = bytes.indexOf(Buffer.from("private")) - 1;
    bytes[nameLengthAt] = 30;
    expect(locateBadField(ImportVolumeRequestSchema, bytes)).toBe("header.volume.name");
    expect(locateBadField(GetHostInfoRequestSchema, new Uint8Array())).toBeUndefined();
  });

  describe("responses that bring their own bytes", () => {
    const listVms = methodDefinition(VmService.method.listVms);
    const page = () => {
      const message = create(ListVmsResponseSchema, { nextPageToken: "next", totalSize: 2 });
      return { message, bytes: toBinary(ListVmsResponseSchema, message) };
    };

    it("sends those bytes, as often as asked", () => {
      const { message, bytes } = page();
      encodedResponse(message, bytes);
      expect(listVms.responseSerialize(message)).toEqual(Buffer.from(bytes));
      expect(listVms.responseSerialize(message)).toEqual(Buffer.from(bytes));
    });

    it("gives lent bytes back as it serializes them, once, and keeps no view of them", () => {
      const { message, bytes } = page();
      message.$unknown = [{ no: 1, wireType: 2, data: bytes }];
      const giveBack = jest.fn();
      encodedResponse(message, bytes, giveBack);
      expect(giveBack).not.toHaveBeenCalled();
      expect(listVms.responseSerialize(message)).toEqual(Buffer.from(bytes));
      expect(giveBack).toHaveBeenCalledTimes(1);
      expect(message.$unknown).toBeUndefined();
      // Their buffer may hold another page by now: sending this one again would send that.
      expect(() => listVms.responseSerialize(message)).toThrow(/serialized once/);
      expect(giveBack).toHaveBeenCalledTimes(1);
    });
  });
});
