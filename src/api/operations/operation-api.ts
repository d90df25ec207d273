import type { Operations as OperationsService } from "../../../gen/google/longrunning/operations_pb";
import type { OperationService } from "../../../gen/steward/v1/operation_service_pb";
import { InvalidFieldError } from "../../core/errors";
import type { Operations } from "../../core/operations/operations";
import type { ServiceImpl } from "../../server/service-impl";
import { durationMs } from "../durations";
import { operationMessage } from "./operation-messages";

/**
 * OperationService, and the same handlers as google.longrunning.Operations for generic clients:
 * both take and give google.longrunning's own messages.
 */
export function operationApi(operations: Operations): ServiceImpl<typeof OperationService> & ServiceImpl<typeof OperationsService> {
  return {
    getOperation: async (request) => operationMessage(operations.get(request.name)),
    listOperations: async (request) => {
      if (request.name !== "" && request.name !== "operations") throw new InvalidFieldError("name", 'the operations\' parent is "operations", or empty');
      const page = operations.list({ filter: request.filter, pageSize: request.pageSize, pageToken: request.pageToken });
      return { operations: page.operations.map(operationMessage), nextPageToken: page.nextPageToken, unreachable: [] };
    },
    waitOperation: async (request, ctx) => {
      const timeoutMs = request.timeout ? durationMs(request.timeout, "timeout") : undefined;
      return operationMessage(await operations.wait(request.name, timeoutMs, ctx.signal));
    },
    cancelOperation: async (request) => {
      operations.cancel(request.name);
      return {};
    },
    deleteOperation: async (request) => {
      operations.delete(request.name);
      return {};
    },
  };
}
