import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import type { Operation } from "../../gen/google/longrunning/operations_pb";
import type { Status } from "../../gen/google/rpc/status_pb";

/** An operation that ended with an error: its google.rpc.Status, as a call's error would carry it. */
export class OperationFailedError extends Error {
  constructor(
    readonly operation: string,
    readonly status: Status,
  ) {
    super(`${operation} failed (code ${status.code}): ${status.message}`);
    this.name = "OperationFailedError";
  }
}

/**
 * The response of an operation that is done (AIP-151), as the message of `schema`: throws
 * OperationFailedError when it failed, and an Error when it is still running or its response
 * is of another type.
 */
export function responseOf<Desc extends DescMessage>(operation: Operation, schema: Desc): MessageShape<Desc> {
  if (!operation.done) throw new Error(`${operation.name} is still running: wait for it (OperationService.WaitOperation)`);
  if (operation.result.case === "error") throw new OperationFailedError(operation.name, operation.result.value);
  if (operation.result.case !== "response") throw new Error(`${operation.name} is done but has no result`);
  const response = anyUnpack(operation.result.value, schema);
  if (!response) throw new Error(`${operation.name}'s response is a ${operation.result.value.typeUrl}, not a ${schema.typeName}`);
  return response;
}
