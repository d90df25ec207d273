/**
 * A QMP client: the greeting and capabilities negotiation, then commands and events over one
 * MonitorConnection. Used by the QEMU driver, and by the block exports and devices that drive
 * the same QEMU (or a qemu-storage-daemon) through its QMP socket.
 */
import * as net from "node:net";
import type { Duplex } from "node:stream";
import {
  type CommandOptions,
  DEFAULT_MONITOR_LIMITS,
  MonitorConnection,
  type MonitorEvent,
  type MonitorLimits,
  MonitorProtocolError,
} from "./monitor-connection";

export type { MonitorEvent as QmpEvent } from "./monitor-connection";

/** QEMU's version, as its greeting gives it. */
export interface QmpVersion {
  major: number;
  minor: number;
  micro: number;
  /** The distribution's package string, such as "Debian 1:7.2+dfsg-7". */
  package: string;
}

export interface QmpConnectOptions {
  /** How long the connection, the greeting and the negotiation may take together. */
  timeoutMs?: number;
  limits?: Partial<MonitorLimits>;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

export class QmpClient {
  private constructor(
    private readonly connection: MonitorConnection,
    readonly version: QmpVersion,
    /** The capabilities QEMU offered in its greeting (such as "oob"); none is enabled. */
    readonly capabilities: readonly string[],
  ) {}

  /** Connects to the QMP socket at `socketPath` and negotiates; the client is ready for commands. */
  static async connect(socketPath: string, options: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const socket = await openUnixSocket(socketPath, timeoutMs);
    return QmpClient.over(socket, options);
  }

  /** Negotiates over a connected stream: the greeting first, then qmp_capabilities. */
  static async over(stream: Duplex, options: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const connection = new MonitorConnection(stream, { ...DEFAULT_MONITOR_LIMITS, ...options.limits });
    try {
      const greeting = await connection.nextOther(timeoutMs, "the QMP greeting");
      const { version, capabilities } = parseGreeting(greeting);
      await connection.execute("qmp_capabilities", undefined, { timeoutMs });
      return new QmpClient(connection, version, capabilities);
    } catch (error) {
      connection.close(error instanceof Error ? error.message : String(error));
      throw error;
    }
  }

  get closed(): boolean {
    return this.connection.closed;
  }

  /** Runs a QMP command; resolves with what it returns, rejects with MonitorCommandError when QEMU refuses it. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, options?: CommandOptions): Promise<T> {
    return this.connection.execute(command, args, options) as Promise<T>;
  }

  /** Calls `listener` with each asynchronous event; returns how to stop. */
  onEvent(listener: (event: MonitorEvent) => void): () => void {
    return this.connection.onEvent(listener);
  }

  /** Calls `listener` once when the connection closes, with why (QEMU exited, or close()). */
  onClose(listener: (error: Error) => void): void {
    this.connection.onClose(listener);
  }

  close(): void {
    this.connection.close();
  }
}

function parseGreeting(greeting: Record<string, unknown>): { version: QmpVersion; capabilities: string[] } {
  const qmp = greeting.QMP as { version?: { qemu?: Record<string, unknown>; package?: unknown }; capabilities?: unknown } | undefined;
  const qemu = qmp?.version?.qemu;
  if (!qmp || !qemu) throw new MonitorProtocolError(`the monitor did not greet as QMP does: ${JSON.stringify(greeting).slice(0, 200)}`);
  return {
    version: { major: Number(qemu.major), minor: Number(qemu.minor), micro: Number(qemu.micro), package: typeof qmp.version?.package === "string" ? qmp.version.package.trim() : "" },
    capabilities: Array.isArray(qmp.capabilities) ? qmp.capabilities.map(String) : [],
  };
}

/** A connected unix socket, or the reason it could not be had within `timeoutMs`. */
export function openUnixSocket(socketPath: string, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path: socketPath });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`could not connect to ${socketPath} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}
