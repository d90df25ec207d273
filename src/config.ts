import * as path from "node:path";
import { parseArgs } from "node:util";
import type { EventSettings } from "./core/events/event-hub";
import { MAX_TIMER_MS } from "./core/shared/long-timer";

/**
 * The server's configuration: flags, each with a STEWARD_* environment equivalent (a flag
 * wins over its variable), validated into one typed object before anything starts.
 */

export type HypervisorChoice = "auto" | "qemu" | "sim";
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";

export type ListenAddress =
  | { kind: "tcp"; host: string; port: number; text: string }
  | { kind: "unix"; path: string; text: string };

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /** With it, clients must present a certificate signed by this CA (mTLS). */
  clientCaFile: string | undefined;
}

export interface Config {
  listen: ListenAddress[];
  dataDir: string;
  hypervisor: HypervisorChoice;
  /**
   * The unprivileged user QEMU runs as when Steward runs as root (a user of its own, as
   * libvirt's libvirt-qemu); ignored otherwise, where QEMU runs as Steward's own user.
   */
  qemuUser: string;
  logLevel: LogLevel;
  tls: TlsFiles | undefined;
  /** How long in-flight calls may run on after SIGTERM/SIGINT before they are cut. */
  shutdownGraceMs: number;
  /** The largest message accepted or sent; larger requests get RESOURCE_EXHAUSTED. */
  maxMessageBytes: number;
  connections: ConnectionSettings;
  events: EventSettings;
  /** Below this share of its size left (percent), a pool is low on space and says so (pool-space-low). */
  poolSpaceLowPercent: number;
}

/** What one client may hold of the server (docs/LIMITS.md). */
export interface ConnectionSettings {
  /** The most calls open at once on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). */
  maxStreamsPerConnection: number;
  /** The most streaming calls (Events…) open at once, on all connections together. */
  maxStreams: number;
  /** The most connections open at once on each listening address; more are closed as they come. */
  maxConnections: number;
  /** The most calls of any kind open at once, on all connections together. */
  maxCalls: number;
  /** The most bytes of request messages no handler has taken, on all calls together. */
  maxPendingRequestBytes: number;
  /** A connection with no call open for this long is closed (GOAWAY); the client reconnects. */
  idleMs: number;
  /** How often the server pings a connection to learn whether its client is still there. */
  keepaliveMs: number;
  /** How long a keepalive ping may wait for its answer before the connection is closed. */
  keepaliveTimeoutMs: number;
}



export const DEFAULT_PORT = 50051;
export const DEFAULT_DATA_DIR = "/var/lib/steward";
/** The user QEMU runs as when Steward runs as root; scripts/install-system-deps makes it. */
export const DEFAULT_QEMU_USER = "steward-qemu";
export const SOCKET_FILE = "steward.sock";
/** gRPC's customary limit: a volume import streams in chunks of at most 1 MiB, lists are paged. */
export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** The smallest limit accepted: what Steward stores of one VM is bounded far below it (docs/LIMITS.md). */
export const MIN_MAX_MESSAGE_BYTES = 1024 * 1024;
export const DEFAULT_SHUTDOWN_GRACE_SECONDS = 5;
export const DEFAULT_MAX_STREAMS_PER_CONNECTION = 256;
export const DEFAULT_MAX_STREAMS = 1024;
export const DEFAULT_MAX_CONNECTIONS = 1024;
export const DEFAULT_MAX_CALLS = 4096;
export const DEFAULT_MAX_PENDING_REQUEST_BYTES = 256 * 1024 * 1024;
export const DEFAULT_IDLE_SECONDS = 300;
export const DEFAULT_KEEPALIVE_SECONDS = 120;
export const DEFAULT_KEEPALIVE_TIMEOUT_SECONDS = 20;
export const DEFAULT_EVENTS_RETAINED = 100_000;
export const DEFAULT_EVENTS_HEARTBEAT_SECONDS = 5;
export const DEFAULT_EVENTS_BUFFER = 10_000;
export const DEFAULT_POOL_SPACE_LOW_PERCENT = 10;
const HYPERVISORS: readonly HypervisorChoice[] = ["auto", "qemu", "sim"];
const LOG_LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

export const SERVE_HELP = `Usage: steward serve [options]

Runs the Steward gRPC server, which owns the virtual machines of this host.

Options (each has an environment variable; the flag wins):
  --listen ADDR          Where to listen: HOST:PORT, [IPV6]:PORT or unix:/PATH. Repeatable;
                         STEWARD_LISTEN takes a comma-separated list. Default:
                         127.0.0.1:${DEFAULT_PORT} and unix:DATA_DIR/${SOCKET_FILE} (mode 0660).
                         A non-loopback address needs --tls-cert, --tls-key and --tls-client-ca.
  --data-dir DIR         Where the state (SQLite), sockets and pools live.
                         STEWARD_DATA_DIR. Default: ${DEFAULT_DATA_DIR} (npm start: ./data).
                         One server per folder: a second one refuses to start.
  --hypervisor KIND      auto, qemu or sim. STEWARD_HYPERVISOR. Default: auto, which uses QEMU
                         (KVM when /dev/kvm is usable, else TCG) when qemu-system-x86_64 is
                         installed, else the simulation (no guest code runs) with a warning.
  --qemu-user NAME       The user QEMU runs as when Steward runs as root. STEWARD_QEMU_USER.
                         Default: ${DEFAULT_QEMU_USER} (made by scripts/install-system-deps).
                         Ignored when Steward does not run as root: QEMU runs as Steward's user.
  --log-level LEVEL      trace, debug, info, warn, error, fatal or silent. STEWARD_LOG_LEVEL.
                         Default: info. Logs are JSON lines on stdout, one per RPC.
  --tls-cert FILE        PEM certificate chain of the server; TCP listeners speak TLS.
                         STEWARD_TLS_CERT.
  --tls-key FILE         PEM private key of the server. STEWARD_TLS_KEY.
  --tls-client-ca FILE   PEM CA bundle: clients must present a certificate it signed (mTLS);
                         the certificate's subject CN becomes the caller's identity, as
                         cert:<CN> (never dom0). STEWARD_TLS_CLIENT_CA. Without it, TCP
                         listeners are loopback only and every caller is "dom0".
  --shutdown-grace SECS  On SIGTERM/SIGINT, how long in-flight calls may finish before they
                         are cut. STEWARD_SHUTDOWN_GRACE. Default: ${DEFAULT_SHUTDOWN_GRACE_SECONDS}.
  --max-message-bytes N  The largest request or response message. STEWARD_MAX_MESSAGE_BYTES.
                         Default: ${DEFAULT_MAX_MESSAGE_BYTES} (4 MiB), at least ${MIN_MAX_MESSAGE_BYTES} (1 MiB);
                         larger requests get RESOURCE_EXHAUSTED. Lists are paged and imports
                         are chunked to fit.
  --max-streams N        How many streaming calls (Events…) may be open at once, on all
                         connections together; one more is RESOURCE_EXHAUSTED (TOO_MANY_STREAMS).
                         STEWARD_MAX_STREAMS. Default: ${DEFAULT_MAX_STREAMS}. One connection holds at
                         most ${DEFAULT_MAX_STREAMS_PER_CONNECTION} calls at once (HTTP/2 MAX_CONCURRENT_STREAMS).
  --max-calls N          How many calls of any kind may be open at once, on all connections
                         together; one more is RESOURCE_EXHAUSTED (TOO_MANY_CALLS).
                         STEWARD_MAX_CALLS. Default: ${DEFAULT_MAX_CALLS}.
  --max-connections N    How many connections may be open at once on each listening address;
                         more are closed as they come. STEWARD_MAX_CONNECTIONS.
                         Default: ${DEFAULT_MAX_CONNECTIONS}.
  --max-pending-request-bytes N  How many bytes of request messages no handler has taken
                         (a unary call's for the whole call, a stream's until read) the server
                         holds, for all calls together; the call that would pass it is
                         RESOURCE_EXHAUSTED (PENDING_REQUESTS_TOO_LARGE). At least the message
                         size. STEWARD_MAX_PENDING_REQUEST_BYTES. Default: ${DEFAULT_MAX_PENDING_REQUEST_BYTES} (256 MiB).
  --idle-timeout SECS    A connection with no call open for this long is closed (the client
                         reconnects). STEWARD_IDLE_TIMEOUT. Default: ${DEFAULT_IDLE_SECONDS}.
  --keepalive SECS       How often the server pings each connection. STEWARD_KEEPALIVE.
                         Default: ${DEFAULT_KEEPALIVE_SECONDS}.
  --keepalive-timeout SECS  A connection that does not answer a ping within this long is
                         closed. STEWARD_KEEPALIVE_TIMEOUT. Default: ${DEFAULT_KEEPALIVE_TIMEOUT_SECONDS}.
  --events-retained N    How many of the latest events are kept for clients that resume an
                         Events stream. STEWARD_EVENTS_RETAINED. Default: ${DEFAULT_EVENTS_RETAINED}.
  --events-heartbeat SECS  How often an idle Events stream sends a heartbeat.
                         STEWARD_EVENTS_HEARTBEAT. Default: ${DEFAULT_EVENTS_HEARTBEAT_SECONDS}.
  --events-buffer N      How many events may wait for one slow Events client before its stream
                         ends with RESOURCE_EXHAUSTED. STEWARD_EVENTS_BUFFER. Default: ${DEFAULT_EVENTS_BUFFER}.
  --pool-space-low PERCENT  A pool with less than this share of its size left (on its
                         filesystem, or under its limit) emits pool-space-low, once until it has
                         room again. STEWARD_POOL_SPACE_LOW. Default: ${DEFAULT_POOL_SPACE_LOW_PERCENT}; 0 never.
  -h, --help             Show this help.

The unix socket is never TLS: its file mode (0660) decides who may call.
`;

type Env = Readonly<Record<string, string | undefined>>;

/** Parses `steward serve` arguments and the STEWARD_* variables into a validated Config. */
export function parseServeConfig(args: readonly string[], env: Env): Config {
  const flags = parseFlags(args);
  const value = (flag: keyof typeof flags, variable: string): string | undefined =>
    (flags[flag] as string | undefined) ?? nonEmpty(env[variable]);
  /** A flag, else its STEWARD_* variable (STEWARD_MAX_CALLS for max-calls), else its default. */
  const setting = (flag: keyof typeof flags, fallback: number): string => value(flag, `STEWARD_${flag.toUpperCase().replace(/-/g, "_")}`) ?? String(fallback);
  /** A whole number setting, positive. */
  const count = (flag: keyof typeof flags, fallback: number): number => Math.floor(positiveNumber(`--${flag}`, setting(flag, fallback)));
  /** A duration setting in seconds, as milliseconds. */
  const duration = (flag: keyof typeof flags, fallbackSeconds: number): number => timerMs(`--${flag}`, setting(flag, fallbackSeconds));

  const dataDir = path.resolve(value("data-dir", "STEWARD_DATA_DIR") ?? DEFAULT_DATA_DIR);
  const listenTexts = flags.listen ?? nonEmpty(env.STEWARD_LISTEN)?.split(",").map((s) => s.trim()).filter(Boolean);
  const listen = (listenTexts ?? [`127.0.0.1:${DEFAULT_PORT}`, `unix:${path.join(dataDir, SOCKET_FILE)}`]).map(
    parseListenAddress,
  );
  const tls = parseTls(value("tls-cert", "STEWARD_TLS_CERT"), value("tls-key", "STEWARD_TLS_KEY"), value("tls-client-ca", "STEWARD_TLS_CLIENT_CA"));
  if (!tls?.clientCaFile) requireLoopback(listen, tls !== undefined);

  const maxMessageBytes = atLeast(
    "--max-message-bytes",
    count("max-message-bytes", DEFAULT_MAX_MESSAGE_BYTES),
    MIN_MAX_MESSAGE_BYTES,
    "the largest VM view (see docs/LIMITS.md) and notes must fit in one message",
  );
  return {
    listen,
    dataDir,
    hypervisor: oneOf("--hypervisor", value("hypervisor", "STEWARD_HYPERVISOR") ?? "auto", HYPERVISORS),
    qemuUser: value("qemu-user", "STEWARD_QEMU_USER") ?? DEFAULT_QEMU_USER,
    logLevel: oneOf("--log-level", value("log-level", "STEWARD_LOG_LEVEL") ?? "info", LOG_LEVELS),
    tls,
    shutdownGraceMs: duration("shutdown-grace", DEFAULT_SHUTDOWN_GRACE_SECONDS),
    maxMessageBytes,
    connections: {
      maxStreamsPerConnection: DEFAULT_MAX_STREAMS_PER_CONNECTION,
      maxStreams: count("max-streams", DEFAULT_MAX_STREAMS),
      maxCalls: count("max-calls", DEFAULT_MAX_CALLS),
      maxConnections: count("max-connections", DEFAULT_MAX_CONNECTIONS),
      maxPendingRequestBytes: atLeast(
        "--max-pending-request-bytes",
        count("max-pending-request-bytes", DEFAULT_MAX_PENDING_REQUEST_BYTES),
        maxMessageBytes,
        "one request of the largest message size must fit",
      ),
      idleMs: duration("idle-timeout", DEFAULT_IDLE_SECONDS),
      keepaliveMs: duration("keepalive", DEFAULT_KEEPALIVE_SECONDS),
      keepaliveTimeoutMs: duration("keepalive-timeout", DEFAULT_KEEPALIVE_TIMEOUT_SECONDS),
    },
    events: {
      retained: count("events-retained", DEFAULT_EVENTS_RETAINED),
      heartbeatMs: duration("events-heartbeat", DEFAULT_EVENTS_HEARTBEAT_SECONDS),
      subscriberBuffer: count("events-buffer", DEFAULT_EVENTS_BUFFER),
    },
    poolSpaceLowPercent: percent("--pool-space-low", setting("pool-space-low", DEFAULT_POOL_SPACE_LOW_PERCENT)),
  };
}

export function wantsHelp(args: readonly string[]): boolean {
  return args.includes("--help") || args.includes("-h");
}

function parseFlags(args: readonly string[]) {
  try {
    return parseArgs({
      args: [...args],
      strict: true,
      allowPositionals: false,
      options: {
        listen: { type: "string", multiple: true },
        "data-dir": { type: "string" },
        hypervisor: { type: "string" },
        "qemu-user": { type: "string" },
        "log-level": { type: "string" },
        "tls-cert": { type: "string" },
        "tls-key": { type: "string" },
        "tls-client-ca": { type: "string" },
        "shutdown-grace": { type: "string" },
        "max-message-bytes": { type: "string" },
        "max-streams": { type: "string" },
        "max-calls": { type: "string" },
        "max-connections": { type: "string" },
        "max-pending-request-bytes": { type: "string" },
        "idle-timeout": { type: "string" },
        keepalive: { type: "string" },
        "keepalive-timeout": { type: "string" },
        "events-retained": { type: "string" },
        "events-heartbeat": { type: "string" },
        "events-buffer": { type: "string" },
        "pool-space-low": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}; see steward serve --help`);
  }
}

export function parseListenAddress(text: string): ListenAddress {
  if (text.startsWith("unix:")) {
    const socketPath = text.slice("unix:".length).replace(/^\/\/(?=\/)/, "");
    if (!socketPath) throw new ConfigError(`--listen ${text}: the unix socket needs a path (unix:/run/steward.sock)`);
    return { kind: "unix", path: path.resolve(socketPath), text };
  }
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) {
    throw new ConfigError(`--listen ${text}: expected HOST:PORT, [IPV6]:PORT or unix:/PATH`);
  }
  return { kind: "tcp", host: match[1] ?? match[2], port, text };
}

export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * A listener other machines can reach takes only callers that prove who they are (mTLS): with
 * TLS alone, anyone there could call as they please, and with nothing, as the host's own admin.
 */
function requireLoopback(listen: readonly ListenAddress[], tlsWithoutClientCa: boolean): void {
  for (const address of listen) {
    if (address.kind === "tcp" && !isLoopback(address.host)) {
      const why = tlsWithoutClientCa
        ? "and TLS without --tls-client-ca lets anyone there call without saying who they are"
        : "and without TLS anyone there could control this host's VMs";
      throw new ConfigError(
        `--listen ${address.text} is reachable from other machines, ${why}. Require client certificates with ` +
          "--tls-cert FILE --tls-key FILE --tls-client-ca FILE (mTLS), or listen on 127.0.0.1 or a unix socket.",
      );
    }
  }
}

function parseTls(certFile?: string, keyFile?: string, clientCaFile?: string): TlsFiles | undefined {
  if (!certFile && !keyFile) {
    if (clientCaFile) throw new ConfigError("--tls-client-ca needs --tls-cert and --tls-key: mTLS is TLS first");
    return undefined;
  }
  if (!certFile || !keyFile) throw new ConfigError("--tls-cert and --tls-key go together");
  return { certFile: path.resolve(certFile), keyFile: path.resolve(keyFile), clientCaFile: clientCaFile && path.resolve(clientCaFile) };
}

function oneOf<T extends string>(flag: string, given: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(given)) return given as T;
  throw new ConfigError(`${flag} ${given}: expected one of ${allowed.join(", ")}`);
}

function positiveNumber(flag: string, given: string): number {
  const number = Number(given);
  if (!Number.isFinite(number) || number <= 0) throw new ConfigError(`${flag} ${given}: expected a positive number`);
  return number;
}

function percent(flag: string, given: string): number {
  const number = Number(given);
  if (given.trim() === "" || !Number.isFinite(number) || number < 0 || number >= 100) throw new ConfigError(`${flag} ${given}: expected a percentage from 0 to under 100`);
  return number;
}

/** The longest wait a timer of Node's holds, in seconds: a flag longer than that would fire at once. */
const MAX_TIMER_SECONDS = Math.floor(MAX_TIMER_MS / 1000);

/** A duration flag in seconds, as milliseconds: positive, and no longer than a timer holds. */
function timerMs(flag: string, given: string): number {
  const seconds = positiveNumber(flag, given);
  if (seconds > MAX_TIMER_SECONDS) throw new ConfigError(`${flag} ${given}: expected at most ${MAX_TIMER_SECONDS} seconds (about 24 days)`);
  return 1000 * seconds;
}

function atLeast(flag: string, number: number, minimum: number, why: string): number {
  if (number < minimum) throw new ConfigError(`${flag} ${number}: expected at least ${minimum}: ${why}`);
  return number;
}

function nonEmpty(text: string | undefined): string | undefined {
  return text === undefined || text === "" ? undefined : text;
}
