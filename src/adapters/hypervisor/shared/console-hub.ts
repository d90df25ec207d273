/**
 * A guest's serial console as the port offers it: the driver feeds it everything the guest
 * prints, from the launch on, whether anyone reads or not (so that the guest is never held up
 * by its console), and it keeps the latest output in a ring, so that a reader who comes late
 * sees the boot. Each reader gets the ring's content, then what follows; a reader who falls
 * behind by more than its bound is cut off (its output ends with CONSOLE_READER_TOO_SLOW),
 * never slowing the guest or the others.
 */
import type { ConsoleStream, GuestConsole } from "../../../ports/hypervisor";
import { consoleReaderTooSlow } from "../../../ports/hypervisor-errors";

export interface ConsoleLimits {
  /** How much of the latest output is kept for readers who come later. */
  ringBytes: number;
  /** How far a reader may fall behind before it is cut off. */
  readerBacklogBytes: number;
}

export const DEFAULT_CONSOLE_LIMITS: ConsoleLimits = { ringBytes: 256 * 1024, readerBacklogBytes: 4 * 1024 * 1024 };

export class ConsoleHub implements GuestConsole {
  private ring: Uint8Array[] = [];
  private ringBytes = 0;
  private readonly readers = new Set<ConsoleReader>();
  private ended = false;

  constructor(
    /** Hands bytes typed into the console to the guest; resolves once they are taken (backpressure). */
    private readonly input: (bytes: Uint8Array) => Promise<void>,
    private readonly limits: ConsoleLimits = DEFAULT_CONSOLE_LIMITS,
  ) {}

  /** What the guest printed. */
  received(chunk: Uint8Array): void {
    if (this.ended || chunk.length === 0) return;
    const copy = Uint8Array.from(chunk);
    this.keep(copy);
    for (const reader of this.readers) reader.push(copy);
  }

  /** The console is gone (the guest ended): every reader's output ends, and later opens end at once after the ring. */
  end(): void {
    this.ended = true;
    for (const reader of this.readers) reader.finish();
    this.readers.clear();
  }

  async open(signal: AbortSignal): Promise<ConsoleStream> {
    const reader = new ConsoleReader(this.limits.readerBacklogBytes, () => this.readers.delete(reader));
    for (const chunk of this.ring) reader.push(chunk);
    if (this.ended || signal.aborted) reader.finish();
    else {
      this.readers.add(reader);
      signal.addEventListener("abort", () => reader.finish(), { once: true });
    }
    return {
      output: reader,
      write: (bytes) => (reader.closed ? Promise.reject(new Error("the console stream is closed")) : this.input(bytes)),
      close: () => reader.finish(),
    };
  }

  private keep(chunk: Uint8Array): void {
    this.ring.push(chunk);
    this.ringBytes += chunk.length;
    while (this.ringBytes > this.limits.ringBytes) {
      const first = this.ring[0];
      const excess = this.ringBytes - this.limits.ringBytes;
      if (first.length <= excess) {
        this.ring.shift();
        this.ringBytes -= first.length;
      } else {
        this.ring[0] = first.subarray(excess);
        this.ringBytes -= excess;
      }
    }
  }
}

/** One reader's output: a bounded queue of chunks, read as an async iterable. */
class ConsoleReader implements AsyncIterable<Uint8Array> {
  private queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private wake: (() => void) | undefined;
  private failure: Error | undefined;
  closed = false;

  constructor(
    private readonly backlogBytes: number,
    private readonly gone: () => void,
  ) {}

  push(chunk: Uint8Array): void {
    if (this.closed) return;
    if (this.queuedBytes + chunk.length > this.backlogBytes) {
      this.failure = consoleReaderTooSlow(this.backlogBytes);
      this.finish();
      return;
    }
    this.queue.push(chunk);
    this.queuedBytes += chunk.length;
    this.wakeUp();
  }

  finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.gone();
    this.wakeUp();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    try {
      for (;;) {
        const chunk = this.queue.shift();
        if (chunk) {
          this.queuedBytes -= chunk.length;
          yield chunk;
          continue;
        }
        if (this.failure) throw this.failure;
        if (this.closed) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } finally {
      // A consumer that stops reading early is gone too.
      this.finish();
    }
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
