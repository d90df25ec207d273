import type { Clock } from "../../ports/clock";
import type { Store } from "../../ports/store";
import { serverStopping } from "../errors";
import type { StoredEvent } from "../model/event";
import type { CallContext } from "../shared/call-context";
import { eventsAhead, eventsExpired, invalidNamePrefixes, subscriberTooSlow } from "./event-errors";

export interface EventSettings {
  /** How many of the latest events the log keeps for clients that resume. */
  retained: number;
  /** How often an Events stream says it is alive while nothing happens. */
  heartbeatMs: number;
  /** How many events may wait for one slow subscriber before its stream is ended. */
  subscriberBuffer: number;
}

/** What an Events stream sends: an event, or a sign of life. */
export type StreamItem = { event: StoredEvent } | { heartbeat: { sequence: number; time: Date } };

export interface StreamRequest {
  /** Only events about this VM (its uuid, which a rename does not change); undefined for all. */
  subjectUuid: string | undefined;
  /** Only events whose name starts with one of these; empty for all. */
  prefixes: readonly string[];
  /** Replay the kept events after this sequence number first. */
  afterSequence: number | undefined;
}

/** The most name prefixes one Events stream filters by, and the longest one. */
export const MAX_NAME_PREFIXES = 64;
export const MAX_NAME_PREFIX_LENGTH = 128;

/** Refuses name prefixes that are empty, too many or too long (INVALID_NAME_PREFIXES). */
export function checkNamePrefixes(prefixes: readonly string[]): void {
  if (prefixes.length > MAX_NAME_PREFIXES) throw invalidNamePrefixes(`at most ${MAX_NAME_PREFIXES} prefixes, not ${prefixes.length}`, MAX_NAME_PREFIXES);
  if (prefixes.some((prefix) => prefix === "")) throw invalidNamePrefixes("a prefix must not be empty");
  if (prefixes.some((prefix) => prefix.length > MAX_NAME_PREFIX_LENGTH)) {
    throw invalidNamePrefixes(`a prefix is at most ${MAX_NAME_PREFIX_LENGTH} characters`, MAX_NAME_PREFIX_LENGTH);
  }
}

const REPLAY_BATCH = 1000;
/** Trim the log once this many events (or a tenth of what it keeps) were added. */
const TRIM_SLACK = 1000;

/**
 * Events as they happen, to any number of subscribers. The store publishes each transaction's
 * events once it is on disk, so a subscriber never sees a change that did not happen (or that
 * a power loss could undo), and sees each change once, in sequence order. A subscriber that
 * falls `subscriberBuffer` events behind is cut off instead of slowing the others or the server.
 */
export class EventHub {
  private readonly subscribers = new Set<Subscriber>();
  private addedSinceTrim = 0;
  /**
   * The last event published. The log may hold later ones, committed but not yet on disk: no
   * stream names or replays those before they are published to it.
   */
  private published: number;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly settings: EventSettings,
  ) {
    this.published = store.events.latestSequence();
    store.onCommit((events) => this.publish(events));
  }

  /**
   * The stream of one client: connection-established with the latest sequence number, then the
   * kept events after `afterSequence` (if asked), then new events and heartbeats until the
   * caller goes (its signal) or the server drains.
   */
  async *stream(request: StreamRequest, ctx: CallContext, draining: AbortSignal): AsyncGenerator<StreamItem> {
    const { signal } = ctx;
    const subscriber = new Subscriber(request, this.settings.subscriberBuffer, this.settings.heartbeatMs, [signal, draining]);
    // Subscribe before reading the latest number: every later commit reaches the subscriber.
    this.subscribers.add(subscriber);
    try {
      const latest = this.published;
      if (request.afterSequence !== undefined) this.checkResumable(request.afterSequence, latest);
      yield { event: { sequence: latest, time: this.clock.now(), subject: "", subjectUuid: "", name: "connection-established", kwargs: {} } };
      if (request.afterSequence !== undefined) yield* this.replay(request, request.afterSequence, latest);
      yield* this.follow(subscriber, signal, draining);
    } finally {
      this.subscribers.delete(subscriber);
      subscriber.close();
    }
  }

  /** The uuid of the VM the retained events last named `name` (up to the event `upTo`), if any. */
  uuidNamed(name: string, upTo?: number): string | undefined {
    return this.store.events.uuidOfSubject(name, upTo);
  }

  private checkResumable(after: number, latest: number): void {
    if (after > latest) throw eventsAhead(after, latest);
    const oldest = this.store.events.oldestSequence();
    if (after < oldest - 1) throw eventsExpired(after, oldest);
  }

  private *replay(request: StreamRequest, after: number, latest: number): Generator<StreamItem> {
    let next = after + 1;
    while (next <= latest) {
      const batch = this.store.events.after(next - 1, REPLAY_BATCH);
      // The log may have been trimmed while this client was reading it.
      if (batch.length === 0 || batch[0].sequence !== next) throw eventsExpired(after, batch[0]?.sequence ?? latest + 1);
      for (const event of batch) {
        if (event.sequence > latest) return;
        if (matches(request, event)) yield { event };
        next = event.sequence + 1;
      }
    }
  }

  private async *follow(subscriber: Subscriber, signal: AbortSignal, draining: AbortSignal): AsyncGenerator<StreamItem> {
    while (!signal.aborted) {
      if (subscriber.overflowed) throw subscriberTooSlow(this.settings.subscriberBuffer, subscriber.lastTaken);
      const event = subscriber.take();
      if (event) {
        yield { event };
        continue;
      }
      if (draining.aborted) throw serverStopping();
      const woken = await subscriber.waitForEvents();
      if (!woken && !signal.aborted && !draining.aborted) {
        yield { heartbeat: { sequence: this.published, time: this.clock.now() } };
      }
    }
  }

  private publish(events: readonly StoredEvent[]): void {
    this.published = events[events.length - 1].sequence;
    for (const subscriber of this.subscribers) subscriber.offer(events);
    this.addedSinceTrim += events.length;
    if (this.addedSinceTrim >= Math.max(1, Math.min(TRIM_SLACK, Math.floor(this.settings.retained / 10)))) {
      this.addedSinceTrim = 0;
      this.store.transaction(() => this.store.events.trim(this.settings.retained));
    }
  }
}

function matches(request: StreamRequest, event: StoredEvent): boolean {
  if (request.subjectUuid !== undefined && event.subjectUuid !== request.subjectUuid) return false;
  return request.prefixes.length === 0 || request.prefixes.some((prefix) => event.name.startsWith(prefix));
}

/**
 * One client's queue: bounded, and marked when it overflowed. Its heartbeat timer and its
 * listeners on the signals that end it are set up once, not for every wait: a thousand
 * subscribers each wait again after every event, and the signals are shared by all of them.
 */
class Subscriber {
  private queue: StoredEvent[] = [];
  private head = 0;
  private wake: ((woken: boolean) => void) | undefined;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly stop = () => this.wake?.(true);
  overflowed = false;
  lastTaken = 0;

  constructor(
    private readonly request: StreamRequest,
    private readonly limit: number,
    heartbeatMs: number,
    private readonly endedBy: readonly AbortSignal[],
  ) {
    this.heartbeat = setTimeout(() => this.wake?.(false), heartbeatMs);
    for (const signal of endedBy) signal.addEventListener("abort", this.stop);
  }

  offer(events: readonly StoredEvent[]): void {
    if (this.overflowed) return;
    for (const event of events) {
      if (!matches(this.request, event)) continue;
      if (this.queue.length - this.head >= this.limit) {
        // Stop holding events for it: memory stays bounded whatever the client does.
        this.overflowed = true;
        this.queue = [];
        this.head = 0;
        break;
      }
      this.queue.push(event);
    }
    this.wake?.(true);
  }

  take(): StoredEvent | undefined {
    if (this.head >= this.queue.length) return undefined;
    const event = this.queue[this.head++];
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.lastTaken = event.sequence;
    return event;
  }

  /**
   * Waits for events or the end of the stream; false when the heartbeat interval passed first.
   * The caller checks the signals before waiting.
   */
  waitForEvents(): Promise<boolean> {
    this.heartbeat.refresh();
    return new Promise((resolve) => {
      this.wake = (woken) => {
        this.wake = undefined;
        resolve(woken);
      };
    });
  }

  close(): void {
    clearTimeout(this.heartbeat);
    for (const signal of this.endedBy) signal.removeEventListener("abort", this.stop);
    this.wake?.(true);
  }
}
