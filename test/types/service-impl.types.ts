/**
 * Compile-time checks of the typed handlers, run by `npm run typecheck`: each
 * @ts-expect-error below must be an error, or tsc fails.
 */
import type { HostService } from "../../gen/steward/v1/host_service_pb";
import type { EventService } from "../../gen/steward/v1/event_service_pb";
import { notYetImplemented } from "../../src/api/not-implemented";
import type { ServiceImpl } from "../../src/server/service-impl";

const complete: Omit<ServiceImpl<typeof HostService>, "getHostInfo"> = {
  listVmClasses: async () => ({ classes: [] }),
  listLabels: notYetImplemented,
  getLabel: notYetImplemented,
  createLabel: notYetImplemented,
  removeLabel: notYetImplemented,
  listGlobalProperties: notYetImplemented,
  getGlobalProperty: notYetImplemented,
  setGlobalProperty: notYetImplemented,
  resetGlobalProperty: notYetImplemented,
  describeGlobalProperty: notYetImplemented,
};

// @ts-expect-error: a service implementation without one of its RPCs (getHostInfo) does not compile.
export const missingHandler: ServiceImpl<typeof HostService> = complete;

export const wrongResponse: ServiceImpl<typeof HostService> = {
  ...complete,
  // @ts-expect-error: a handler must answer its own response type.
  getHostInfo: async () => ({ classes: [] }),
};

export const wrongKind: ServiceImpl<typeof EventService> = {
  // @ts-expect-error: a server-streaming RPC needs an async iterable, not a promise.
  events: async () => ({}),
};
