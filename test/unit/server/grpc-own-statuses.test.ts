import * as grpc from "@grpc/grpc-js";
import { errorDetails } from "../../../src/client/status-details";
import { DomainError } from "../../../src/core/errors";
import { toRpcStatus } from "../../../src/server/error-status";
import { withDetails } from "../../../src/server/grpc-own-statuses";
import { SERVER } from "../../../src/server/server-errors";

function infoOf(status: { code: grpc.status; details: string; metadata?: grpc.Metadata | null }) {
  return errorDetails({ ...new Error(status.details), code: status.code, details: status.details, metadata: status.metadata ?? new grpc.Metadata() });
}

describe("statuses grpc-js sends by itself", () => {
  it("get an ErrorInfo: a message too large either way names the limit", () => {
    for (const details of ["Received message larger than max (5012 vs. 4096)", "Sent message larger than max (1530436 vs. 4096)", "Received message that decompresses to a size larger than 4096"]) {
      const status = withDetails({ code: grpc.status.RESOURCE_EXHAUSTED, details });
      expect([status.code, infoOf(status)]).toEqual([grpc.status.RESOURCE_EXHAUSTED, expect.objectContaining({ reason: "MESSAGE_TOO_LARGE", metadata: { limit: "4096" } })]);
    }
  });

  it("name an unknown method, and cut a long one's message as Steward's own are", () => {
    const path = `/steward.v1.VmService/${"x".repeat(10_000)}`;
    const status = withDetails({ code: grpc.status.UNIMPLEMENTED, details: `The server does not implement the method ${path}` });
    expect(infoOf(status)?.reason).toBe("METHOD_UNKNOWN");
    expect(status.details.length).toBeLessThanOrEqual(512);
    expect(infoOf(status)!.metadata.method.length).toBeLessThanOrEqual(128);
  });

  it("blame the client, not the server, for bytes it sent that cannot be read", () => {
    for (const details of ["Failed to decompress message", "Error deserializing request", "Received a second request message for server streaming method /a/b", "Received no request message for server streaming method /a/b"]) {
      const status = withDetails({ code: details.startsWith("Received") ? grpc.status.UNIMPLEMENTED : grpc.status.INTERNAL, details });
      expect([details, status.code, infoOf(status)?.reason]).toEqual([details, grpc.status.INVALID_ARGUMENT, "MALFORMED_REQUEST"]);
    }
    const br = withDetails({ code: grpc.status.UNIMPLEMENTED, details: 'Received message compressed with unsupported encoding "br"' });
    expect([br.code, infoOf(br)?.reason, infoOf(br)?.metadata]).toEqual([grpc.status.UNIMPLEMENTED, "ENCODING_UNSUPPORTED", { encoding: "br" }]);
  });

  it("tell a deadline, and anything else as a transport failure; OK and Steward's own statuses pass as they are", () => {
    expect(infoOf(withDetails({ code: grpc.status.DEADLINE_EXCEEDED, details: "Deadline exceeded" }))?.reason).toBe("DEADLINE_EXCEEDED");
    expect(infoOf(withDetails({ code: grpc.status.UNAVAILABLE, details: "Call dropped" }))?.reason).toBe("TRANSPORT_FAILURE");
    const ok = { code: grpc.status.OK, details: "OK" };
    expect(withDetails(ok)).toBe(ok);
    const own = toRpcStatus(new DomainError("not-found", SERVER.SERVICE_UNKNOWN, "unknown service x"), "");
    const status = { code: own.code, details: own.details, metadata: own.metadata };
    expect(withDetails(status)).toBe(status);
  });
});
