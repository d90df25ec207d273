import { create, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { AnySchema, anyPack, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { OperationSchema, type Operation } from "../../../gen/google/longrunning/operations_pb";
import { OperationKind, OperationMetadataSchema, ProgressUnit } from "../../../gen/steward/v1/operation_pb";
import type { OperationKind as DomainOperationKind, OperationRecord, OperationResult, ProgressUnit as DomainProgressUnit } from "../../core/model/operation";
import { keptErrorStatus } from "../../server/error-status";

const PROGRESS_UNIT: Readonly<Record<DomainProgressUnit, ProgressUnit>> = {
  bytes: ProgressUnit.BYTES,
  steps: ProgressUnit.STEPS,
};

/** Operation kinds in the words the core, the events and the filter use. */
const OPERATION_KIND: Readonly<Record<DomainOperationKind, OperationKind>> = {
  "create-vm": OperationKind.CREATE_VM,
  "clone-vm": OperationKind.CLONE_VM,
  "clone-volume": OperationKind.CLONE_VOLUME,
  "import-volume": OperationKind.IMPORT_VOLUME,
  backup: OperationKind.BACKUP,
  restore: OperationKind.RESTORE,
};

/** An operation as google.longrunning.Operation: OperationMetadata, and the response or the error once done. */
export function operationMessage(op: OperationRecord): Operation {
  const metadata = anyPack(
    OperationMetadataSchema,
    create(OperationMetadataSchema, {
      kind: OPERATION_KIND[op.kind],
      target: op.target,
      targetUuid: op.targetUuid,
      caller: op.caller,
      createTime: timestampFromDate(op.createdAt),
      endTime: op.endedAt && timestampFromDate(op.endedAt),
      progressDone: BigInt(op.progress.done),
      progressTotal: BigInt(op.progress.total),
      progressUnit: PROGRESS_UNIT[op.progress.unit],
      cancelRequested: op.cancelRequested,
      method: op.method,
    }),
  );
  const done = op.outcome !== "running";
  const result: Operation["result"] = op.result
    ? { case: "response", value: create(AnySchema, { typeUrl: `type.googleapis.com/${op.result.type}`, value: op.result.bytes }) }
    : op.error
      ? { case: "error", value: keptErrorStatus(op.error) }
      : { case: undefined };
  return create(OperationSchema, { name: op.name, metadata, done, result });
}

/** How an RPC's response is kept as an operation's result: its type's name and its bytes. */
export function responseResult<Desc extends DescMessage>(schema: Desc, response: MessageInitShape<Desc>): OperationResult {
  return { type: schema.typeName, bytes: toBinary(schema, create(schema, response)) };
}
