import * as grpc from "@grpc/grpc-js";
import { errorDetails } from "../../../src/client/status-details";
import { alreadyExists, declareReasons, DomainError, failedPrecondition, InvalidFieldError, notFound, notImplemented, type ErrorKind } from "../../../src/core/errors";
import { ERROR_DOMAIN, toRpcStatus } from "../../../src/server/error-status";

const R = declareReasons("error-status test", ["R", "VM_NOT_FOUND", "INVALID_VM_NAME", "VM_EXISTS", "VM_NOT_HALTED"]);

function decode(error: unknown) {
  const status = toRpcStatus(error, "req-1");
  const details = errorDetails({ ...new Error(status.details), code: status.code, details: status.details, metadata: status.metadata });
  return { status, details };
}

describe("toRpcStatus", () => {
  it.each<[ErrorKind, grpc.status]>([
    ["invalid-argument", grpc.status.INVALID_ARGUMENT],
    ["not-found", grpc.status.NOT_FOUND],
    ["already-exists", grpc.status.ALREADY_EXISTS],
    ["failed-precondition", grpc.status.FAILED_PRECONDITION],
    ["permission-denied", grpc.status.PERMISSION_DENIED],
    ["resource-exhausted", grpc.status.RESOURCE_EXHAUSTED],
    ["out-of-range", grpc.status.OUT_OF_RANGE],
    ["deadline-exceeded", grpc.status.DEADLINE_EXCEEDED],
    ["unavailable", grpc.status.UNAVAILABLE],
    ["aborted", grpc.status.ABORTED],
    ["cancelled", grpc.status.CANCELLED],
    ["data-loss", grpc.status.DATA_LOSS],
    ["not-implemented", grpc.status.UNIMPLEMENTED],
  ])("maps %s to %s", (kind, code) => {
    expect(toRpcStatus(new DomainError(kind, R.R, "m"), "id").code).toBe(code);
  });

  it("keeps the domain message and sends an ErrorInfo with reason, domain and metadata", () => {
    const { status, details } = decode(notFound(R.VM_NOT_FOUND, "no VM named work", { vm: "work" }));
    expect(status).toMatchObject({ code: grpc.status.NOT_FOUND, details: "no VM named work", unexpected: false });
    expect(details).toEqual({
      code: grpc.status.NOT_FOUND,
      message: "no VM named work",
      reason: "VM_NOT_FOUND",
      domain: ERROR_DOMAIN,
      metadata: { vm: "work" },
      fieldViolations: [],
    });
  });

  it("adds a BadRequest naming the field of an invalid argument", () => {
    const { status, details } = decode(new InvalidFieldError("vm", "must start with a letter", R.INVALID_VM_NAME));
    expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(status.details).toBe("vm: must start with a letter");
    expect(details?.reason).toBe("INVALID_VM_NAME");
    expect(details?.metadata).toEqual({ field: "vm" });
    expect(details?.fieldViolations).toEqual([{ field: "vm", description: "vm: must start with a letter" }]);
  });

  it("names the RPC that is not implemented yet", () => {
    const { status, details } = decode(notImplemented("steward.v1.VmService/GetVm"));
    expect(status.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(status.details).toBe("steward.v1.VmService/GetVm is not implemented yet");
    expect(details?.reason).toBe("NOT_IMPLEMENTED");
  });

  it("turns anything unexpected into INTERNAL with a generic message that hides the cause", () => {
    const { status, details } = decode(new Error("SQLITE_CORRUPT at /secret/path"));
    expect(status.code).toBe(grpc.status.INTERNAL);
    expect(status.unexpected).toBe(true);
    expect(status.details).not.toContain("secret");
    expect(status.details).toContain("req-1");
    expect(details).toMatchObject({ reason: "INTERNAL", metadata: { request_id: "req-1" } });
    expect(decode("a thrown string").status.code).toBe(grpc.status.INTERNAL);
  });

  it("builds the other helpers with their kinds", () => {
    expect(alreadyExists(R.VM_EXISTS, "m").kind).toBe("already-exists");
    expect(failedPrecondition(R.VM_NOT_HALTED, "m").kind).toBe("failed-precondition");
  });
});
