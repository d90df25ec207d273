/**
 * One connection to a QEMU JSON monitor: QMP, or the guest agent behind its channel. Commands
 * carry an id and are matched to their replies by it, so several may be under way at once;
 * asynchronous events go to listeners as they come; each command has a timeout; when the
 * socket dies, every command under way fails at once with the reason, and so does each later
 * one. Nothing is buffered without a bound: a line may be so long, and so many commands may
 * wait for their replies.
 */
import type { Duplex } from "node:stream";
import { JsonLineSplitter } from "./json-lines";

/** An event QEMU sent of itself (QMP's `{"event": …, "data": …, "timestamp": …}`). */
export interface MonitorEvent {
  name: string;
  data: Record<string, unknown>;
  /** When QEMU says it happened. */
  time: Date;
}

export interface MonitorLimits {
  /** How long a command may wait for its reply, unless it says otherwise. */
  commandTimeoutMs: number;
  /** The longest line taken from the monitor. */
  maxLineBytes: number;
  /** How many commands may wait for their replies at once; one more is refused. */
  maxPending: number;
}

export const DEFAULT_MONITOR_LIMITS: MonitorLimits = {
  commandTimeoutMs: 10_000,
  // query-qmp-schema, the longest reply QEMU gives, is about 200 KiB.
  maxLineBytes: 8 * 1024 * 1024,
  maxPending: 256,
};

/** QEMU answered a command with an error (`{"error": {"class", "desc"}}`). */
export class MonitorCommandError extends Error {
  constructor(
    readonly command: string,
    /** QMP's error class: GenericError, CommandNotFound, DeviceNotActive, DeviceNotFound, KVMMissingCap. */
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(`${command}: ${desc} (${errorClass})`);
  }
}

/** The command got no reply in time; the connection stays usable, and a late reply is dropped. */
export class MonitorTimeoutError extends Error {
  constructor(
    readonly command: string,
    readonly timeoutMs: number,
  ) {
    super(`${command}: no reply from the monitor within ${timeoutMs} ms`);
  }
}

/** The connection is gone (closed, or the socket died): nothing more goes through it. */
export class MonitorClosedError extends Error {
  constructor(reason: string) {
    super(`the monitor connection is closed: ${reason}`);
  }
}

/** The monitor sent something that is not its protocol; the connection is dropped. */
export class MonitorProtocolError extends Error {}

export interface CommandOptions {
  timeoutMs?: number;
}

interface Pending {
  command: string;
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

export class MonitorConnection {
  private readonly splitter: JsonLineSplitter;
  private readonly pending = new Map<number, Pending>();
  private readonly eventListeners = new Set<(event: MonitorEvent) => void>();
  private readonly closeListeners = new Set<(error: MonitorClosedError) => void>();
  /** Lines that are neither replies nor events, such as QMP's greeting, for whoever waits for one. */
  private readonly otherListeners = new Set<(message: Record<string, unknown>) => void>();
  private nextId = 1;
  private closedWith: MonitorClosedError | undefined;

  constructor(
    private readonly socket: Duplex,
    private readonly limits: MonitorLimits = DEFAULT_MONITOR_LIMITS,
  ) {
    this.splitter = new JsonLineSplitter(limits.maxLineBytes);
    socket.on("data", (chunk: Buffer) => this.received(chunk));
    socket.on("error", (error: Error) => this.fail(error.message));
    socket.on("close", () => this.fail("the socket closed"));
    socket.on("end", () => this.fail("the monitor ended the connection"));
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  /** Sends `command` with `args`; resolves with its `return`, rejects with its `error`. */
  execute(command: string, args?: Record<string, unknown>, options: CommandOptions = {}): Promise<unknown> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    if (this.pending.size >= this.limits.maxPending) {
      return Promise.reject(new Error(`${command}: ${this.limits.maxPending} monitor commands wait for their replies already`));
    }
    const id = this.nextId++;
    const timeoutMs = options.timeoutMs ?? this.limits.commandTimeoutMs;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new MonitorTimeoutError(command, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, { command, resolve, reject, timer });
      this.send({ execute: command, ...(args ? { arguments: args } : {}), id });
    });
  }

  /**
   * Sends a command that has no reply when it works (the guest agent's guest-suspend-ram and
   * guest-shutdown); resolves once it is handed to the socket.
   */
  sendWithoutReply(command: string, args?: Record<string, unknown>): Promise<void> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    return new Promise((resolve, reject) => {
      this.socket.write(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) }) + "\n", (error) => (error ? reject(error) : resolve()));
    });
  }

  /** Writes raw bytes ahead of a command (the guest agent's 0xFF resynchronisation mark). */
  writeRaw(bytes: Uint8Array): void {
    if (!this.closedWith) this.socket.write(bytes);
  }

  onEvent(listener: (event: MonitorEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  /** Calls `listener` once when the connection closes, with why; at once when it is closed already. */
  onClose(listener: (error: MonitorClosedError) => void): void {
    if (this.closedWith) {
      listener(this.closedWith);
      return;
    }
    this.closeListeners.add(listener);
  }

  /** The next line that is neither a reply nor an event (QMP's greeting); fails when the connection closes first or `timeoutMs` passes. */
  nextOther(timeoutMs: number, what: string): Promise<Record<string, unknown>> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.otherListeners.delete(take);
        this.closeListeners.delete(closed);
      };
      const take = (message: Record<string, unknown>): void => {
        done();
        resolve(message);
      };
      const closed = (error: MonitorClosedError): void => {
        done();
        reject(error);
      };
      const timer = setTimeout(() => {
        done();
        reject(new MonitorTimeoutError(what, timeoutMs));
      }, timeoutMs);
      this.otherListeners.add(take);
      this.closeListeners.add(closed);
    });
  }

  /** Ends the connection; commands under way fail with MonitorClosedError. */
  close(reason = "closed by Steward"): void {
    this.fail(reason);
    this.socket.destroy();
  }

  private send(message: Record<string, unknown>): void {
    this.socket.write(JSON.stringify(message) + "\n");
  }

  private received(chunk: Buffer): void {
    if (this.closedWith) return;
    let values: unknown[];
    try {
      values = this.splitter.push(chunk);
    } catch (error) {
      this.close(error instanceof Error ? error.message : String(error));
      return;
    }
    for (const value of values) {
      if (this.closedWith) return;
      this.dispatch(value);
    }
  }

  private dispatch(value: unknown): void {
    if (value instanceof SyntaxError || typeof value !== "object" || value === null || Array.isArray(value)) {
      this.close(new MonitorProtocolError(`the monitor sent a line that is not a JSON object: ${describe(value)}`).message);
      return;
    }
    const message = value as Record<string, unknown>;
    if (typeof message.event === "string") return this.dispatchEvent(message);
    if ("return" in message || "error" in message) return this.dispatchReply(message);
    for (const listener of [...this.otherListeners]) listener(message);
  }

  private dispatchEvent(message: Record<string, unknown>): void {
    const event: MonitorEvent = {
      name: message.event as string,
      data: isRecord(message.data) ? message.data : {},
      time: eventTime(message.timestamp),
    };
    for (const listener of [...this.eventListeners]) listener(event);
  }

  private dispatchReply(message: Record<string, unknown>): void {
    // A reply with no id of ours answers a command that timed out, or one that was sent without a reply expected.
    if (typeof message.id !== "number") return;
    const waiting = this.pending.get(message.id);
    if (!waiting) return;
    this.pending.delete(message.id);
    clearTimeout(waiting.timer);
    if ("error" in message) {
      const error = isRecord(message.error) ? message.error : {};
      waiting.reject(new MonitorCommandError(waiting.command, text(error.class, "GenericError"), text(error.desc, "an error without a description")));
    } else {
      waiting.resolve(message.return);
    }
  }

  private fail(reason: string): void {
    if (this.closedWith) return;
    const error = new MonitorClosedError(reason);
    this.closedWith = error;
    for (const waiting of this.pending.values()) {
      clearTimeout(waiting.timer);
      waiting.reject(error);
    }
    this.pending.clear();
    this.eventListeners.clear();
    this.otherListeners.clear();
    const listeners = [...this.closeListeners];
    this.closeListeners.clear();
    for (const listener of listeners) listener(error);
  }
}

function text(value: unknown, otherwise: string): string {
  return typeof value === "string" ? value : otherwise;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function eventTime(timestamp: unknown): Date {
  if (!isRecord(timestamp)) return new Date();
  const seconds = Number(timestamp.seconds);
  const microseconds = Number(timestamp.microseconds);
  if (!Number.isFinite(seconds) || !Number.isFinite(microseconds)) return new Date();
  return new Date(seconds * 1000 + Math.floor(microseconds / 1000));
}

function describe(value: unknown): string {
  const text = value instanceof SyntaxError ? value.message : JSON.stringify(value);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
