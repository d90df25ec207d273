import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { create } from "@bufbuild/protobuf";
import { EventsResponseSchema, type EventService, type EventsResponse } from "../../../gen/steward/v1/event_service_pb";
import { checkNamePrefixes, type EventHub, type StreamItem } from "../../core/events/event-hub";
import type { StoredEvent } from "../../core/model/event";
import type { EventSubjects } from "../../core/vms/event-subjects";
import { constantResponse } from "../../server/grpc-definitions";
import type { ServiceImpl } from "../../server/service-impl";

/** The core parts EventService calls. */
export interface EventParts {
  eventHub: EventHub;
  eventSubjects: EventSubjects;
}

/** EventService: the host's events as a stream, resumable by sequence number. */
export function eventApi({ eventHub: hub, eventSubjects: subjects }: EventParts): ServiceImpl<typeof EventService> {
  return {
    async *events(request, ctx) {
      checkNamePrefixes(request.namePrefixes);
      const afterSequence = request.afterSequence === undefined ? undefined : Number(request.afterSequence);
      const subjectUuid = request.vm === "" ? undefined : subjects.toFollow(request.vm, afterSequence);
      const items = hub.stream({ subjectUuid, prefixes: request.namePrefixes, afterSequence }, ctx, ctx.draining);
      for await (const item of items) yield eventsResponse(item);
    },
  };
}

/**
 * Every subscriber of an event is sent the same message: it is built and serialized once per
 * event, not once per subscriber (one change may go to thousands).
 */
const messages = new WeakMap<StoredEvent, EventsResponse>();

function eventsResponse(item: StreamItem): EventsResponse {
  if ("heartbeat" in item) {
    const heartbeat = { sequence: BigInt(item.heartbeat.sequence), time: timestampFromDate(item.heartbeat.time) };
    return create(EventsResponseSchema, { kind: { case: "heartbeat", value: heartbeat } });
  }
  const { event } = item;
  let message = messages.get(event);
  if (!message) {
    const value = {
      sequence: BigInt(event.sequence),
      time: timestampFromDate(event.time),
      subject: event.subject,
      subjectUuid: event.subjectUuid,
      name: event.name,
      kwargs: { ...event.kwargs },
    };
    message = constantResponse(EventsResponseSchema, create(EventsResponseSchema, { kind: { case: "event", value } }));
    messages.set(event, message);
  }
  return message;
}
