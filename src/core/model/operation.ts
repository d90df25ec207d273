/** What an operation's work is, in the words its events and ListOperations' filter use. */
export type OperationKind = "create-vm" | "clone-vm" | "clone-volume" | "import-volume" | "backup" | "restore";

/** How an operation ended; "running" until it does. */
export type OperationOutcome = "running" | "succeeded" | "failed" | "cancelled";

/** What an operation's progress counts. */
export type ProgressUnit = "bytes" | "steps";

/** How far an operation has got: `done` of `total` (0 while the total is not known). */
export interface Progress {
  done: number;
  total: number;
  unit: ProgressUnit;
}

/**
 * What an operation produced, as the RPC that began it answers: the response message's type and
 * bytes, which the core keeps without reading them.
 */
export interface OperationResult {
  type: string;
  bytes: Uint8Array;
}

/**
 * Why an operation failed, as a domain error tells it: its kind (an ErrorKind of core/errors.ts),
 * or "internal" for an unexpected failure.
 */
export interface OperationError {
  kind: string;
  reason: string;
  message: string;
  metadata: Readonly<Record<string, string>>;
}

/** An operation (AIP-151), as stored. */
export interface OperationRecord {
  /** `operations/<uuid>`. */
  name: string;
  /** What the work is. */
  kind: OperationKind;
  /** The RPC that began it. */
  method: string;
  /** The VM the work is on (its name when it began, and uuid); empty for the host. */
  target: string;
  targetUuid: string;
  caller: string;
  createdAt: Date;
  endedAt: Date | undefined;
  progress: Progress;
  cancelRequested: boolean;
  outcome: OperationOutcome;
  /** Once succeeded. */
  result: OperationResult | undefined;
  /** Once failed or cancelled. */
  error: OperationError | undefined;
}

/** What a listing of operations selects by. */
export interface OperationFilter {
  done?: boolean;
  kind?: string;
  target?: string;
}

/** Where a listing of operations stands: the last one given, by its creation time and name. */
export interface OperationPosition {
  createdAt: Date;
  name: string;
}
