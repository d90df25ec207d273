import { spawn } from "node:child_process";
import * as path from "node:path";
import { HostService } from "../../gen/steward/v1/host_service_pb";
import { createClient } from "../../src/client/steward-client";
import { MAIN } from "../fixtures/child-server";
import { makeTempDir, removeDir } from "../fixtures/temp-dir";

/** A server whose log nobody reads goes on serving, and stops when told. */
describe("a log that nobody reads", () => {
  let dir: string;
  beforeEach(() => (dir = makeTempDir()));
  afterEach(() => removeDir(dir));

  it("never stops the server: calls are answered, and SIGTERM ends it", async () => {
    const socket = path.join(dir, "s.sock");
    // stdout is a pipe this test never reads: it fills after some tens of kB of log lines.
    const child = spawn(process.execPath, [MAIN, "serve", "--data-dir", dir, "--listen", `unix:${socket}`, "--hypervisor", "sim"], {
      stdio: ["ignore", "pipe", "ignore"],
    });
    child.stdout.pause();
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      const host = createClient(HostService, `unix:${socket}`);
      for (let i = 0; i < 200; i++) {
        try {
          await host.getHostInfo({}, { timeoutMs: 500 });
          break;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
      // Thousands of log lines, far more than a pipe holds: every call is answered in time.
      const started = Date.now();
      for (let i = 0; i < 40; i++) await Promise.all(Array.from({ length: 100 }, () => host.getHostInfo({}, { timeoutMs: 5000 })));
      expect(Date.now() - started).toBeLessThan(20_000);
      host.close();
      child.kill("SIGTERM");
      const code = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve("still running"), 15_000))]);
      expect(code).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      await exited;
    }
  });
});
