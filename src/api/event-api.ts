import type { EventService } from "../../gen/steward/v1/event_service_pb";
import type { ServiceImpl } from "../server/service-impl";
import { notYetImplemented } from "./not-implemented";

/** EventService: the contract is complete; the behaviour comes with a later issue. */
export function eventApi(): ServiceImpl<typeof EventService> {
  return {
    events: notYetImplemented,
  };
}
