import type { Clock } from "../../ports/clock";
import type { Log } from "../../ports/log";
import type { Store } from "../../ports/store";
import { DomainError, InvalidFieldError } from "../errors";
import type { EventLog } from "../events/event-log";
import type { EventSubject } from "../model/event";
import { HOST_SUBJECT } from "../model/event";
import type { OperationError, OperationFilter, OperationKind, OperationRecord, OperationResult, ProgressUnit } from "../model/operation";
import type { CallContext } from "../shared/call-context";
import { checkedPageSize, type PageTokens } from "../shared/page-token";
import type { ProgressReporter } from "../shared/progress";
import type { RequestLedger } from "../shared/request-ledger";
import { isUuid } from "../shared/uuid";
import { invalidOperationFilter, invalidOperationName, operationCancelled, operationInterrupted, operationNotFound, operationResultGone, operationRunning } from "./operation-errors";
import { operationDone, operationProgress } from "./operation-events";

/**
 * How long an operation is kept once it ended; its request_id is remembered again as it ends,
 * so that a retry within this time gets it, however long it ran.
 */
export const OPERATION_RETENTION_MS = 24 * 60 * 60 * 1000;
/** The most often a running operation tells of its progress (an event, and a write). */
export const PROGRESS_INTERVAL_MS = 1000;
export const DEFAULT_OPERATION_PAGE_SIZE = 50;
export const DEFAULT_WAIT_MS = 60_000;
export const MAX_WAIT_MS = 10 * 60_000;
/** How long a stopping Steward waits for its running operations to undo their work. */
const STOP_TIMEOUT_MS = 10_000;

const NAME_PREFIX = "operations/";

/** What begins an operation: its kind and RPC, what it works on, and the request that asked. */
export interface OperationSpec {
  kind: OperationKind;
  method: string;
  /** The VM the work is on; the host when absent. */
  target?: EventSubject;
  unit: ProgressUnit;
  /** The request's request_id (AIP-155): a retry with it gets the same operation. "" for none. */
  requestId: string;
  /** What the request asked, so that its request_id is not taken for another request's. */
  request: object;
}

/**
 * What an operation does. `check` refuses, before the operation begins, a request that cannot
 * succeed as things stand (the call fails, and no operation is made). `work` gets a context whose
 * signal aborts when the operation is cancelled (it then undoes what it made and throws), and a
 * reporter of its progress; `encode` keeps its result as the response the RPC gives.
 */
export interface OperationJob<T> {
  check(): void | Promise<void>;
  work(ctx: CallContext, progress: ProgressReporter): Promise<T>;
  encode(result: T): OperationResult;
  /** The VM the work made, when the operation had none to work on (CreateVm): it is then about it. */
  made?(result: T): EventSubject;
}

interface Running {
  record: OperationRecord;
  spec: OperationSpec;
  /** Steward is stopping: the work was stopped, and the operation ends as interrupted. */
  interrupted?: boolean;
  controller: AbortController;
  finished: Promise<void>;
  lastTold: number;
}

/**
 * Long work as operations (AIP-151). An operation's record is stored when it begins, with its
 * request_id, and again when it ends (and as it progresses, at most once a second); while it
 * runs, the record here is the truth. It outlives the call that began it: the caller may go,
 * and get it, wait for it or cancel it later. Once ended it is kept OPERATION_RETENTION_MS.
 */
export class Operations {
  private readonly running = new Map<string, Running>();

  constructor(
    private readonly store: Store,
    private readonly events: EventLog,
    private readonly ledger: RequestLedger,
    private readonly clock: Clock,
    private readonly log: Log,
    private readonly tokens: PageTokens,
    /** How long a call waits for its operation before it answers with it still running. */
    private readonly inlineMs = 1000,
  ) {}

  /**
   * Begins the work as an operation, or finds the one an earlier request with the same
   * request_id began; waits for it up to a moment (short work is done by then), and returns it.
   */
  async start<T>(spec: OperationSpec, ctx: CallContext, job: OperationJob<T>): Promise<OperationRecord> {
    this.ledger.checkKey(spec.requestId);
    const earlier = this.earlier(spec, ctx);
    if (earlier) return earlier;
    await job.check();
    // Looked for again: a retry may have begun its operation while the check read the disk.
    const meanwhile = this.earlier(spec, ctx);
    if (meanwhile) return meanwhile;
    const record = this.begin(spec, ctx);
    const controller = new AbortController();
    const opCtx: CallContext = { caller: ctx.caller, requestId: ctx.requestId, signal: controller.signal };
    // Progress is first told a second in: work done sooner tells only its end.
    const running: Running = { record, spec, controller, finished: Promise.resolve(), lastTold: Date.now() };
    this.running.set(record.name, running);
    running.finished = this.run(running, job, opCtx);
    return this.waitFor(record.name, this.inlineMs, ctx.signal);
  }

  /** The operation an earlier request with the same request_id began, waited for a moment; undefined when there is none. */
  private earlier(spec: OperationSpec, ctx: CallContext): Promise<OperationRecord> | undefined {
    const earlier = this.ledger.earlier(spec.requestId, spec.method, spec.request);
    if (earlier === undefined) return undefined;
    if (!this.find(earlier)) throw operationResultGone(spec.requestId, earlier);
    return this.waitFor(earlier, this.inlineMs, ctx.signal);
  }

  /** The operation's latest state; NOT_FOUND once it is forgotten. */
  get(name: string): OperationRecord {
    checkName(name);
    const found = this.find(name);
    if (!found) throw operationNotFound(name);
    return found;
  }

  /** A page of operations, the newest first. */
  list(request: { filter: string; pageSize: number; pageToken: string }): { operations: OperationRecord[]; nextPageToken: string } {
    const pageSize = checkedPageSize(request.pageSize, DEFAULT_OPERATION_PAGE_SIZE);
    const filter = parseFilter(request.filter);
    this.forgetOld();
    const position = this.tokens.decode(request.pageToken, { filter: request.filter });
    const after = position === "" ? undefined : parsePosition(position);
    const found = this.store.operations.list(filter, after, pageSize + 1).map((stored) => this.running.get(stored.name)?.record ?? stored);
    const page = found.slice(0, pageSize).map(copy);
    const last = page[page.length - 1];
    const nextPageToken = found.length > pageSize ? this.tokens.encode(JSON.stringify({ createdAt: last.createdAt.toISOString(), name: last.name }), { filter: request.filter }) : "";
    return { operations: page, nextPageToken };
  }

  /** Waits until the operation ends, `timeoutMs` passes or the caller stops waiting; returns its latest state. */
  wait(name: string, timeoutMs: number | undefined, signal: AbortSignal): Promise<OperationRecord> {
    checkName(name);
    if (timeoutMs !== undefined && timeoutMs < 0) throw new InvalidFieldError("timeout", "must not be negative");
    this.get(name);
    return this.waitFor(name, Math.min(timeoutMs ?? DEFAULT_WAIT_MS, MAX_WAIT_MS), signal);
  }

  /** Asks a running operation to stop; nothing for one that ended or was asked already. */
  cancel(name: string): void {
    this.get(name);
    const running = this.running.get(name);
    if (!running || running.record.cancelRequested) return;
    running.record.cancelRequested = true;
    this.store.transaction(() => this.store.operations.put(running.record));
    running.controller.abort();
    this.log.info({ operation: name, kind: running.record.kind }, "an operation was asked to stop");
  }

  /** Forgets an ended operation; FAILED_PRECONDITION while it runs; nothing when there is none. */
  delete(name: string): void {
    checkName(name);
    if (this.running.has(name)) throw operationRunning(name);
    this.store.transaction(() => this.store.operations.delete(name));
  }

  /**
   * Steward is stopping: stops the work of every running operation (it undoes what it made, as
   * when cancelled) and waits for them, up to `timeoutMs`, so that each ends, as interrupted,
   * before the store closes. One that does not end in time is ended so at the next start.
   */
  async stop(timeoutMs = STOP_TIMEOUT_MS): Promise<void> {
    const running = [...this.running.values()];
    for (const each of running) {
      each.interrupted = true;
      each.controller.abort();
    }
    if (running.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled(running.map((each) => each.finished)), new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  /**
   * Ends, as interrupted, the operations a Steward that stopped left running: their work died
   * with it. Call once, at start, before any operation begins.
   */
  endInterrupted(): void {
    for (const left of this.store.operations.list({ done: false }, undefined, Number.MAX_SAFE_INTEGER)) {
      this.log.warn({ operation: left.name, kind: left.kind }, "an operation was running when the last Steward stopped: ended as interrupted");
      this.end(left, "failed", undefined, errorOf(operationInterrupted()));
    }
  }

  private begin(spec: OperationSpec, ctx: CallContext): OperationRecord {
    const target = spec.target ?? HOST_SUBJECT;
    const record: OperationRecord = {
      name: `${NAME_PREFIX}${crypto.randomUUID()}`,
      kind: spec.kind,
      method: spec.method,
      target: target.name,
      targetUuid: target.uuid,
      caller: ctx.caller,
      createdAt: this.clock.now(),
      endedAt: undefined,
      progress: { done: 0, total: 0, unit: spec.unit },
      cancelRequested: false,
      outcome: "running",
      result: undefined,
      error: undefined,
    };
    // With its request_id in one transaction: a retry that comes at once finds this operation.
    this.store.transaction(() => {
      this.forgetOld();
      this.store.operations.put(record);
      this.ledger.remember(spec.requestId, spec.method, spec.request, record.name);
    });
    return record;
  }

  private async run<T>(running: Running, job: OperationJob<T>, ctx: CallContext): Promise<void> {
    const { record } = running;
    const progress: ProgressReporter = (done, total) => this.progressed(running, done, total);
    try {
      const result = await job.work(ctx, progress);
      record.progress.done = Math.max(record.progress.done, record.progress.total);
      const made = record.target === "" ? job.made?.(result) : undefined;
      if (made) ({ name: record.target, uuid: record.targetUuid } = made);
      this.end(record, "succeeded", job.encode(result), undefined, running.spec);
    } catch (error) {
      const stopped = error instanceof DomainError && error.kind === "cancelled";
      if (!(error instanceof DomainError)) this.log.error({ operation: record.name, kind: record.kind, err: error }, "an operation failed unexpectedly");
      if (running.interrupted && stopped) this.end(record, "failed", undefined, errorOf(operationInterrupted()), running.spec);
      else if (record.cancelRequested && stopped) this.end(record, "cancelled", undefined, errorOf(operationCancelled(record.name)), running.spec);
      else this.end(record, "failed", undefined, errorOf(error), running.spec);
    } finally {
      this.running.delete(record.name);
    }
  }

  private progressed(running: Running, done: number, total: number): void {
    const { record } = running;
    if (record.outcome !== "running") return;
    record.progress = { ...record.progress, done, total };
    const now = Date.now();
    if (now - running.lastTold < PROGRESS_INTERVAL_MS) return;
    running.lastTold = now;
    try {
      this.store.transaction(() => {
        this.store.operations.put(record);
        this.events.append(operationProgress(record));
      });
    } catch (error) {
      // Progress is news, not state: the operation goes on, and tells its end all the same.
      this.log.warn({ operation: record.name, err: error }, "could not note an operation's progress");
    }
  }

  private end(record: OperationRecord, outcome: OperationRecord["outcome"], result: OperationResult | undefined, error: OperationError | undefined, asked?: OperationSpec): void {
    record.outcome = outcome;
    record.result = result;
    record.error = error;
    record.endedAt = this.clock.now();
    this.store.transaction(() => {
      this.store.operations.put(record);
      this.events.append(operationDone(record));
      // Remembered from its end, as long as the operation is kept.
      if (asked) this.ledger.remember(asked.requestId, asked.method, asked.request, record.name);
    });
  }

  private async waitFor(name: string, timeoutMs: number, signal: AbortSignal): Promise<OperationRecord> {
    const running = this.running.get(name);
    if (running && timeoutMs > 0 && !signal.aborted) {
      let timer: NodeJS.Timeout | undefined;
      let onAbort: (() => void) | undefined;
      await Promise.race([
        running.finished,
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, timeoutMs);
          onAbort = resolve;
          signal.addEventListener("abort", onAbort, { once: true });
        }),
      ]);
      clearTimeout(timer);
      if (onAbort) signal.removeEventListener("abort", onAbort);
    }
    return this.get(name);
  }

  /** A copy of the operation as it is now, unless it is forgotten. */
  private find(name: string): OperationRecord | undefined {
    const running = this.running.get(name);
    if (running) return copy(running.record);
    const stored = this.store.operations.get(name);
    if (!stored || (stored.endedAt && this.clock.now().getTime() - stored.endedAt.getTime() > OPERATION_RETENTION_MS)) return undefined;
    return stored;
  }

  private forgetOld(): void {
    this.store.operations.forgetEndedBefore(new Date(this.clock.now().getTime() - OPERATION_RETENTION_MS));
  }
}

function checkName(name: string): void {
  if (!name.startsWith(NAME_PREFIX) || !isUuid(name.slice(NAME_PREFIX.length))) throw invalidOperationName(name);
}

function copy(record: OperationRecord): OperationRecord {
  return { ...record, progress: { ...record.progress } };
}

/** A failure as an operation keeps it: a domain error's words, or an unexpected one's bare fact. */
function errorOf(error: unknown): OperationError {
  if (error instanceof DomainError) return { kind: error.kind, reason: error.reason, message: error.message, metadata: { ...error.metadata } };
  // No reason of its own: the server gives an unexpected failure's (INTERNAL).
  return { kind: "internal", reason: "", message: "the operation failed unexpectedly; the server log has the cause", metadata: {} };
}

/** `done=true`, `done=false`, `kind=<kind>`, `target=<vm>`, joined by " AND ". */
function parseFilter(text: string): OperationFilter {
  const filter: OperationFilter = {};
  if (text.trim() === "") return filter;
  for (const term of text.split(/\s+AND\s+/)) {
    const match = /^\s*(done|kind|target)\s*=\s*"?([^"\s]+)"?\s*$/.exec(term);
    if (!match) throw invalidOperationFilter(term);
    const [, key, value] = match;
    if (key === "done") {
      if (value !== "true" && value !== "false") throw invalidOperationFilter(term);
      filter.done = value === "true";
    } else filter[key as "kind" | "target"] = value;
  }
  return filter;
}

function parsePosition(text: string): { createdAt: Date; name: string } {
  const { createdAt, name } = JSON.parse(text) as { createdAt: string; name: string };
  return { createdAt: new Date(createdAt), name };
}
