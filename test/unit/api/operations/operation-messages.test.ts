import { anyUnpack } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { BadRequestSchema, ErrorInfoSchema } from "../../../../gen/google/rpc/error_details_pb";
import { OperationMetadataSchema, ProgressUnit } from "../../../../gen/steward/v1/operation_pb";
import { CloneVmResponseSchema } from "../../../../gen/steward/v1/vm_service_pb";
import { operationMessage, responseResult } from "../../../../src/api/operations/operation-messages";
import { OperationFailedError, responseOf } from "../../../../src/client/operation-results";
import type { OperationRecord } from "../../../../src/core/model/operation";

const running: OperationRecord = {
  name: "operations/0b4a9c3e-2d1f-4e5a-9b8c-7d6e5f4a3b2c",
  kind: "clone-vm",
  method: "steward.v1.VmService/CloneVm",
  target: "src",
  targetUuid: "3f0c5a0e-6b1f-4d7e-9a43-0b8d7c1e2f10",
  caller: "dom0",
  createdAt: new Date("2026-06-01T10:00:00Z"),
  endedAt: undefined,
  progress: { done: 512, total: 1024, unit: "bytes" },
  cancelRequested: false,
  outcome: "running",
  result: undefined,
  error: undefined,
};

describe("operationMessage", () => {
  it("writes a running operation: not done, no result, its progress in the metadata", () => {
    const message = operationMessage(running);
    expect([message.name, message.done, message.result.case]).toEqual([running.name, false, undefined]);
    expect(anyUnpack(message.metadata!, OperationMetadataSchema)).toMatchObject({ progressDone: 512n, progressTotal: 1024n, progressUnit: ProgressUnit.BYTES });
    expect(anyUnpack(message.metadata!, OperationMetadataSchema)?.endTime).toBeUndefined();
    expect(() => responseOf(message, CloneVmResponseSchema)).toThrow(/still running/);
  });

  it("writes the kept response as an Any of its type", () => {
    const message = operationMessage({ ...running, outcome: "succeeded", endedAt: new Date(), result: responseResult(CloneVmResponseSchema, { vm: { name: "copy" } }) });
    expect(message.done).toBe(true);
    expect(message.result.case === "response" && message.result.value.typeUrl).toBe("type.googleapis.com/steward.v1.CloneVmResponse");
    expect(responseOf(message, CloneVmResponseSchema).vm!.name).toBe("copy");
  });

  it("writes a kept error as the google.rpc.Status a call would end with: code, message, ErrorInfo, BadRequest for a field", () => {
    const message = operationMessage({
      ...running,
      outcome: "failed",
      endedAt: new Date(),
      error: { kind: "invalid-argument", reason: "INVALID_VM_NAME", message: "new_name: bad", metadata: { field: "new_name" } },
    });
    expect(message.result.case).toBe("error");
    const status = message.result.case === "error" ? message.result.value : undefined;
    expect([status?.code, status?.message]).toEqual([grpc.status.INVALID_ARGUMENT, "new_name: bad"]);
    expect(anyUnpack(status!.details[0], ErrorInfoSchema)).toMatchObject({ reason: "INVALID_VM_NAME", domain: "steward.v1", metadata: { field: "new_name" } });
    expect(anyUnpack(status!.details[1], BadRequestSchema)?.fieldViolations[0].field).toBe("new_name");
    expect(() => responseOf(message, CloneVmResponseSchema)).toThrow(OperationFailedError);
    const internal = operationMessage({ ...running, outcome: "failed", endedAt: new Date(), error: { kind: "internal", reason: "", message: "failed unexpectedly", metadata: {} } });
    expect(internal.result.case === "error" && internal.result.value.code).toBe(grpc.status.INTERNAL);
    expect(internal.result.case === "error" && anyUnpack(internal.result.value.details[0], ErrorInfoSchema)?.reason).toBe("INTERNAL");
  });
});
