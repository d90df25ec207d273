import { execFile } from "node:child_process";

/** What a tool printed; its output is bounded, so that a runaway tool cannot fill Steward's memory. */
export interface ToolOutput {
  stdout: string;
  stderr: string;
}

/** A tool that failed: its exit code (or the errno when it could not run) and what it said. */
export class ToolError extends Error {
  constructor(
    readonly tool: string,
    readonly args: readonly string[],
    readonly code: number | string | undefined,
    readonly stderr: string,
  ) {
    super(`${tool} ${args.join(" ")} failed (${code ?? "killed"}): ${stderr.trim() || "no message"}`);
    this.name = "ToolError";
  }

  /** Whether it failed because a filesystem was full: the tools say so in errno's words. */
  get noSpace(): boolean {
    return /No space left on device|Disk quota exceeded/i.test(this.stderr);
  }
}

const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;

/**
 * Runs `tool` with `args`, each one argv entry: never through a shell, so that no byte of a
 * request can become a command. Resolves with its output when it exits 0; with `timeoutMs`, a
 * tool still running then is killed, and the call fails.
 */
export function runTool(tool: string, args: readonly string[], options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<ToolOutput> {
  return new Promise((resolve, reject) => {
    const settings = { maxBuffer: MAX_OUTPUT_BYTES, signal: options.signal, timeout: options.timeoutMs ?? 0, killSignal: "SIGKILL" as const, env: { ...process.env, LC_ALL: "C" } };
    execFile(tool, args, settings, (error, stdout, stderr) => {
      if (error) reject(new ToolError(tool, args, error.code ?? error.signal ?? undefined, String(stderr) || error.message));
      else resolve({ stdout: String(stdout), stderr: String(stderr) });
    });
  });
}
