import { fromBinary } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import type * as grpc from "@grpc/grpc-js";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb";
import { StatusSchema } from "../../gen/google/rpc/status_pb";

export interface ErrorDetails {
  code: number;
  message: string;
  reason: string | undefined;
  domain: string | undefined;
  metadata: Record<string, string>;
  fieldViolations: { field: string; description: string }[];
}

/** Reads the google.rpc.Status that Steward sends in grpc-status-details-bin. */
export function errorDetails(error: grpc.ServiceError): ErrorDetails | undefined {
  const raw = error.metadata?.get("grpc-status-details-bin")[0];
  if (!raw || typeof raw === "string") return undefined;
  const status = fromBinary(StatusSchema, raw);
  let info: ReturnType<typeof anyUnpack<typeof ErrorInfoSchema>>;
  const fieldViolations: ErrorDetails["fieldViolations"] = [];
  for (const detail of status.details) {
    info ??= anyUnpack(detail, ErrorInfoSchema);
    const badRequest = anyUnpack(detail, BadRequestSchema);
    if (badRequest) fieldViolations.push(...badRequest.fieldViolations.map(({ field, description }) => ({ field, description })));
  }
  return {
    code: status.code,
    message: status.message,
    reason: info?.reason,
    domain: info?.domain,
    metadata: { ...(info?.metadata ?? {}) },
    fieldViolations,
  };
}
