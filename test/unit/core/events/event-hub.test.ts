import { getEventListeners } from "node:events";
import type { SqliteStore } from "../../../../src/adapters/store/sqlite/sqlite-store";
import { EventHub } from "../../../../src/core/events/event-hub";
import { systemClock } from "../../../../src/ports/clock";
import { storeForEach } from "../../../fixtures/temp-store";
import { testContext } from "../../../fixtures/call-context";

describe("EventHub subscribers", () => {
  const opened = storeForEach();
  let store: SqliteStore;
  let hub: EventHub;
  beforeEach(() => {
    store = opened.current;
    hub = new EventHub(store, systemClock, { retained: 1000, heartbeatMs: 30, subscriberBuffer: 10 });
  });

  const request = { subjectUuid: undefined, prefixes: [], afterSequence: undefined };
  const listeners = (...signals: AbortSignal[]) => signals.map((signal) => getEventListeners(signal, "abort").length);

  it("listen to the signals that end them once, however many events they wait for, and stop listening when they end", async () => {
    const client = new AbortController();
    const draining = new AbortController();
    const stream = hub.stream(request, testContext(client.signal), draining.signal);
    expect((await stream.next()).value).toMatchObject({ event: { name: "connection-established" } });
    for (let i = 0; i < 5; i++) {
      const next = stream.next();
      store.transaction(() => store.events.append({ subject: "work", subjectUuid: "u-work", name: `domain-tag-add:t${i}`, kwargs: {} }, new Date()));
      expect((await next).value).toMatchObject({ event: { name: `domain-tag-add:t${i}` } });
    }
    expect(listeners(client.signal, draining.signal)).toEqual([1, 1]);

    const ended = stream.next();
    client.abort();
    expect((await ended).done).toBe(true);
    expect(listeners(client.signal, draining.signal)).toEqual([0, 0]);
  });

  it("send a heartbeat after each quiet interval, and events as soon as they come", async () => {
    const stream = hub.stream(request, testContext(), new AbortController().signal);
    await stream.next();
    const started = Date.now();
    expect((await stream.next()).value).toHaveProperty("heartbeat");
    expect((await stream.next()).value).toHaveProperty("heartbeat");
    expect(Date.now() - started).toBeGreaterThanOrEqual(55);
    const next = stream.next();
    store.transaction(() => store.events.append({ subject: "work", subjectUuid: "u-work", name: "domain-tag-add:now", kwargs: {} }, new Date()));
    expect((await next).value).toMatchObject({ event: { name: "domain-tag-add:now" } });
    await stream.return(undefined);
  });
});
