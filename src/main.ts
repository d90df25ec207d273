#!/usr/bin/env node
import { StoreLockedError } from "./adapters/store/sqlite/sqlite-store";
import { HypervisorUnavailableError } from "./adapters/hypervisor/select-hypervisor";
import { StewardApp } from "./app/app";
import { ListenError } from "./server/listen";
import { ConfigError, parseServeConfig, SERVE_HELP, wantsHelp } from "./config";
import { createLogger, flushLogs } from "./logging";
import { STEWARD_VERSION } from "./version";

const USAGE = `Usage: steward <command> [options]

Commands:
  serve       Run the gRPC server (steward serve --help for its options)
  version     Print the version

Steward owns the virtual machines of one host and serves them through one gRPC API.
`;

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...args] = argv;
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === "version" || command === "--version") {
    process.stdout.write(`${STEWARD_VERSION}\n`);
    return 0;
  }
  if (command !== "serve") {
    process.stderr.write(`steward: unknown command ${command}\n\n${USAGE}`);
    return 2;
  }
  if (wantsHelp(args)) {
    process.stdout.write(SERVE_HELP);
    return 0;
  }
  return serve(args);
}

async function serve(args: readonly string[]): Promise<number> {
  let config;
  try {
    config = parseServeConfig(args, process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`steward: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const log = createLogger(config.logLevel);
  let app: StewardApp;
  try {
    app = await StewardApp.start(config, log);
  } catch (error) {
    const known = error instanceof StoreLockedError || error instanceof HypervisorUnavailableError || error instanceof ListenError;
    log.fatal(known ? { reason: error.message } : { err: error }, "cannot start");
    await flushLogs(log);
    process.stderr.write(`steward: cannot start: ${(error as Error).message}\n`);
    return 1;
  }
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once("SIGTERM", () => resolve("SIGTERM"));
    process.once("SIGINT", () => resolve("SIGINT"));
  });
  log.info({ signal }, "stopping");
  await app.stop();
  log.info("stopped");
  await flushLogs(log);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`steward: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exit(1);
  },
);
