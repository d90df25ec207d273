/**
 * The QEMU guest agent (qemu-ga), reached through the virtio-serial channel Steward gives every
 * VM: its socket on the host is QEMU's chardev, which takes one client, Steward. The agent
 * speaks QMP's JSON without a greeting; since a channel may hold what an earlier client left
 * (or commands sent before the agent ran), every use starts with guest-sync-delimited, whose
 * reply carries an id of Steward's choosing, and is marked by a 0xFF byte the agent sends first.
 */
import { randomInt } from "node:crypto";
import { DEFAULT_MONITOR_LIMITS, MonitorConnection, MonitorTimeoutError } from "./qmp/monitor-connection";
import { openUnixSocket } from "./qmp/qmp-client";

/** How long one guest-sync-delimited waits before another is sent (the agent may not run yet). */
const SYNC_TRY_MS = 500;
const CONNECT_TIMEOUT_MS = 2000;

export class GuestAgent {
  private constructor(private readonly connection: MonitorConnection) {}

  static async connect(socketPath: string): Promise<GuestAgent> {
    const socket = await openUnixSocket(socketPath, CONNECT_TIMEOUT_MS);
    return new GuestAgent(new MonitorConnection(socket, DEFAULT_MONITOR_LIMITS));
  }

  get closed(): boolean {
    return this.connection.closed;
  }

  /**
   * Resolves once the agent answers; tries again while it does not (the guest is still
   * booting), until `signal` aborts (then rejects with its reason) or `timeoutMs` passes (then
   * rejects with MonitorTimeoutError).
   */
  async sync(signal: AbortSignal, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      signal.throwIfAborted();
      const id = randomInt(1, 2 ** 31);
      this.connection.writeRaw(Uint8Array.of(0xff));
      const waitMs = Math.max(1, Math.min(SYNC_TRY_MS, deadline - Date.now()));
      try {
        const answered = await abortable(this.connection.execute("guest-sync-delimited", { id }, { timeoutMs: waitMs }), signal);
        if (answered === id) return;
      } catch (error) {
        if (!(error instanceof MonitorTimeoutError)) throw error;
        if (Date.now() >= deadline) throw error;
      }
    }
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<T> {
    return this.connection.execute(command, args, timeoutMs === undefined ? {} : { timeoutMs }) as Promise<T>;
  }

  close(): void {
    this.connection.close();
  }
}

/** `promise`, or the abort's reason as soon as `signal` aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(reasonOf(signal));
  return new Promise((resolve, reject) => {
    const aborted = (): void => reject(reasonOf(signal));
    signal.addEventListener("abort", aborted, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", aborted);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", aborted);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

function reasonOf(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error("aborted");
}
