import type { NewEvent } from "../model/event";
import type { OperationRecord } from "../model/operation";

/** The events of operations, about the VM each works on (the host for others). */

function told(op: OperationRecord, name: string, kwargs: Record<string, string>): NewEvent {
  return { subject: op.target, subjectUuid: op.targetUuid, name, kwargs: { operation: op.name, kind: op.kind, ...kwargs } };
}

/** How far a running operation has got; told at most once a second. */
export const operationProgress = (op: OperationRecord): NewEvent =>
  told(op, "operation-progress", { done: String(op.progress.done), total: String(op.progress.total), unit: op.progress.unit });

/** An operation ended: outcome succeeded, failed or cancelled, with the error's reason when it did not succeed. */
export const operationDone = (op: OperationRecord): NewEvent =>
  told(op, "operation-done", { outcome: op.outcome, ...(op.error ? { reason: op.error.reason } : {}) });
