/**
 * The log port: what the core tells of work no caller waits for (a VM that halted by itself, a
 * participant that failed to settle a halted VM), with the fields that locate it. The server's
 * pino logger is one.
 */
export interface Log {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}
