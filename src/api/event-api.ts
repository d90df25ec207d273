import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { EventService } from "../../gen/steward/v1/event_service_pb";
import { InvalidFieldError } from "../core/errors";
import type { EventHub, StreamItem } from "../core/event-hub";
import type { VmLookup } from "../core/vm-lookup";
import type { ServiceImpl } from "../server/service-impl";

/** EventService: the host's events as a stream, resumable by sequence number. */
export function eventApi(hub: EventHub, vms: VmLookup): ServiceImpl<typeof EventService> {
  return {
    async *events(request, ctx) {
      const subject = request.vm === "" ? undefined : vms.resolve(request.vm).name;
      if (request.namePrefixes.some((prefix) => prefix === "")) throw new InvalidFieldError("name_prefixes", "a prefix must not be empty");
      const afterSequence = request.afterSequence === undefined ? undefined : Number(request.afterSequence);
      const items = hub.stream({ subject, prefixes: request.namePrefixes, afterSequence }, ctx.signal, ctx.draining);
      for await (const item of items) yield eventsResponse(item);
    },
  };
}

function eventsResponse(item: StreamItem) {
  if ("heartbeat" in item) {
    return { kind: { case: "heartbeat" as const, value: { sequence: BigInt(item.heartbeat.sequence), time: timestampFromDate(item.heartbeat.time) } } };
  }
  const { event } = item;
  return {
    kind: {
      case: "event" as const,
      value: { sequence: BigInt(event.sequence), time: timestampFromDate(event.time), subject: event.subject, name: event.name, kwargs: { ...event.kwargs } },
    },
  };
}
