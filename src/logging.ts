import pino, { type Logger } from "pino";
import type { LogLevel } from "./config";

/**
 * JSON lines on stdout, written asynchronously so that logging one line per RPC does not
 * block calls; flushLogs() before the process exits.
 */
export function createLogger(level: LogLevel, destination: pino.DestinationStream = pino.destination({ dest: 1, sync: false })): Logger {
  return pino({ level, base: { service: "steward" }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

export function flushLogs(log: Logger): Promise<void> {
  return new Promise((resolve) => log.flush(() => resolve()));
}
