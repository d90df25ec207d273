import { spawn } from "node:child_process";
import * as path from "node:path";
import { startTestServer, type TestServer } from "../fixtures/test-server";

/** Another language: Python's grpcio with protoc-generated stubs, against the real server. */
describe("a Python grpcio client", () => {
  let server: TestServer;
  beforeAll(async () => (server = await startTestServer()));
  afterAll(() => server.stop());

  it("calls the API, decodes Steward's error details, and imports and exports a volume", async () => {
    const script = path.join(__dirname, "python", "test_steward_api.py");
    const proto = path.resolve(__dirname, "../../proto");
    // Asynchronously: the server lives in this process and must keep answering.
    const result = await runPython(script, proto, server.tcp);
    if (result.code !== 0) throw new Error(`the Python tests failed:\n${result.output}`);
    expect(result.output).toMatch(/Ran 9 tests/);
    expect(result.output).toMatch(/\nOK\s*$/);
  });
});

function runPython(...args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn("/usr/bin/python3", args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    child.on("exit", (code) => resolve({ code, output }));
  });
}
