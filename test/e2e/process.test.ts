import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { HealthCheckResponse_ServingStatus as ServingStatus, Health } from "../../gen/grpc/health/v1/health_pb";
import * as reflectionV1 from "../../gen/grpc/reflection/v1/reflection_pb";
import { HypervisorKind } from "../../gen/steward/v1/host_pb";
import { HostService } from "../../gen/steward/v1/host_service_pb";
import { createClient } from "../../src/client/steward-client";
import { ChildServer, MAIN } from "../fixtures/child-server";
import { rpcError } from "../fixtures/expect-rpc-error";
import { makeTempDir, removeDir } from "../fixtures/temp-dir";

/** `steward serve` as a user runs it: a child process of the built code. */
describe("steward serve, the process", () => {
  let dir: string;
  const children: ChildServer[] = [];
  const serve = (args: string[], env: Record<string, string> = {}) => {
    const child = new ChildServer(["--data-dir", dir, "--listen", "127.0.0.1:0", "--listen", `unix:${path.join(dir, "s.sock")}`, ...args], env);
    children.push(child);
    return child;
  };
  beforeEach(() => (dir = makeTempDir()));
  afterEach(async () => {
    for (const child of children.splice(0)) {
      child.signal("SIGKILL");
      await child.exited;
    }
    removeDir(dir);
  });

  it("documents every flag in --help", () => {
    const help = execFileSync(process.execPath, [MAIN, "serve", "--help"], { encoding: "utf8" });
    for (const flag of ["--listen", "--data-dir", "--hypervisor", "--log-level", "--tls-cert", "--tls-key", "--tls-client-ca", "--shutdown-grace", "--max-message-bytes"]) {
      expect(help).toContain(flag);
    }
    expect(help).toContain("STEWARD_LISTEN");
  });

  it("refuses a non-loopback address without TLS, and says how to enable TLS", async () => {
    const child = new ChildServer(["--data-dir", dir, "--listen", "0.0.0.0:0"]);
    expect(await child.exited).toBe(2);
    expect(child.stderr).toMatch(/--tls-cert FILE --tls-key FILE/);
  });

  it("refuses to share a data folder with a running server, and says why", async () => {
    const first = serve(["--hypervisor", "sim"]);
    await first.listening();
    const second = new ChildServer(["--data-dir", dir, "--listen", "127.0.0.1:0", "--hypervisor", "sim"]);
    expect(await second.exited).toBe(1);
    expect(second.stderr).toContain(`is in use by another Steward server (pid ${first.pid})`);
    // The first one is unharmed.
    const [tcp] = await first.listening();
    const client = createClient(HostService, tcp);
    expect((await client.getHostInfo({})).host!.version).toBeTruthy();
    client.close();
  });

  it("refuses to take over the unix socket of a server on another data folder, and says why", async () => {
    const first = serve(["--hypervisor", "sim"]);
    await first.listening();
    const otherDir = makeTempDir();
    try {
      const socket = path.join(dir, "s.sock");
      const second = new ChildServer(["--data-dir", otherDir, "--listen", `unix:${socket}`, "--hypervisor", "sim"]);
      expect(await second.exited).toBe(1);
      expect(second.stderr).toContain(`cannot listen on unix:${socket}: another server listens there`);
      // The first one still owns its socket.
      const client = createClient(HostService, `unix:${socket}`);
      expect((await client.getHostInfo({})).host!.version).toBeTruthy();
      client.close();
    } finally {
      removeDir(otherDir);
    }
  });

  it("on SIGTERM reports NOT_SERVING, lets an in-flight call finish, closes the state and exits 0", async () => {
    const child = serve(["--hypervisor", "sim", "--shutdown-grace", "10"]);
    const [tcp, unix] = await child.listening();
    const hostId = (await createClient(HostService, tcp).getHostInfo({})).host!.hostId;

    // An in-flight call: a reflection stream the client keeps open.
    const requests = new PushQueue<object>();
    const reflection = createClient(reflectionV1.ServerReflection, tcp);
    const answers = reflection.serverReflectionInfo(requests)[Symbol.asyncIterator]();
    requests.push({ messageRequest: { case: "listServices", value: "" } });
    await answers.next();

    const health = createClient(Health, tcp);
    const statuses: ServingStatus[] = [];
    const watching = (async () => {
      for await (const update of health.watch({ service: "" })) statuses.push(update.status);
    })().catch(() => undefined);
    await until(() => statuses.length === 1);

    child.signal("SIGTERM");
    await until(() => statuses.includes(ServingStatus.NOT_SERVING));
    // New connections are refused, but the call in flight still gets its answers.
    requests.push({ messageRequest: { case: "fileByFilename", value: "steward/v1/vm.proto" } });
    expect(((await answers.next()).value as { messageResponse: { case: string } }).messageResponse.case).toBe("fileDescriptorResponse");
    requests.end();
    await answers.next();

    expect(await child.exited).toBe(0);
    await watching;
    expect(child.lines.some((l) => l.msg === "stopped")).toBe(true);
    expect(fs.existsSync(path.join(dir, "steward.pid"))).toBe(false);
    expect(fs.existsSync(unix.slice("unix:".length))).toBe(false);
    reflection.close();
    health.close();

    // The state was closed cleanly: a new server opens it and finds the same host.
    const again = serve(["--hypervisor", "sim"]);
    const [tcpAgain] = await again.listening();
    const client = createClient(HostService, tcpAgain);
    expect((await client.getHostInfo({})).host!.hostId).toBe(hostId);
    client.close();
  });

  it("on SIGINT with a call that does not end, cuts it after the grace period and exits 0", async () => {
    const child = serve(["--hypervisor", "sim", "--shutdown-grace", "0.5"]);
    const [tcp] = await child.listening();
    const requests = new PushQueue<object>();
    const reflection = createClient(reflectionV1.ServerReflection, tcp);
    const answers = reflection.serverReflectionInfo(requests)[Symbol.asyncIterator]();
    requests.push({ messageRequest: { case: "listServices", value: "" } });
    await answers.next();

    child.signal("SIGINT");
    expect(await child.exited).toBe(0);
    expect(child.lines.some((l) => l.msg === "calls still running after the grace period: cutting them")).toBe(true);
    await expect(answers.next()).rejects.toMatchObject({ code: expect.any(Number) });
    reflection.close();
  });

  it("with --hypervisor auto uses QEMU when it is installed", async () => {
    const child = serve(["--hypervisor", "auto"]);
    const [tcp] = await child.listening();
    const client = createClient(HostService, tcp);
    const { host } = await client.getHostInfo({});
    client.close();
    expect([HypervisorKind.QEMU_KVM, HypervisorKind.QEMU_TCG]).toContain(host!.hypervisor);
    expect(host!.hypervisorVersion).toMatch(/^QEMU emulator version/);
    expect(host!.capabilities.includes("kvm")).toBe(host!.hypervisor === HypervisorKind.QEMU_KVM);
  });

  it("with --hypervisor auto falls back to the simulation, with a warning, when QEMU is absent", async () => {
    const child = serve(["--hypervisor", "auto"], { PATH: "/nonexistent" });
    const [tcp] = await child.listening();
    const client = createClient(HostService, tcp);
    expect((await client.getHostInfo({})).host!.hypervisor).toBe(HypervisorKind.SIM);
    client.close();
    expect(child.lines.find((l) => l.level === 40 && /not installed/.test(String(l.msg)))).toBeDefined();
  });

  it("with --hypervisor qemu refuses to start when QEMU is absent", async () => {
    const child = new ChildServer(["--data-dir", dir, "--listen", "127.0.0.1:0", "--hypervisor", "qemu"], { PATH: "/nonexistent" });
    expect(await child.exited).toBe(1);
    expect(child.stderr).toMatch(/qemu-system-x86_64 is not on the PATH/);
  });

  it("logs one JSON line per RPC with method, code, duration, peer and request id", async () => {
    const child = serve(["--hypervisor", "sim"]);
    const [tcp] = await child.listening();
    const client = createClient(HostService, tcp);
    await client.getHostInfo({}, { metadata: { "x-request-id": "line-check" } });
    const error = await rpcError(client.getLabel({ name: "nope" }, { metadata: { "x-request-id": "line-check-2" } }));
    client.close();
    expect(error.code).toBe(grpc.status.NOT_FOUND);
    const ok = await child.waitForLine((l) => l.requestId === "line-check");
    expect(ok).toMatchObject({ method: "steward.v1.HostService/GetHostInfo", code: "OK", caller: "dom0" });
    expect(ok.peer).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(ok.durationMs).toEqual(expect.any(Number));
    const failed = await child.waitForLine((l) => l.requestId === "line-check-2");
    expect(failed).toMatchObject({ method: "steward.v1.HostService/GetLabel", code: "NOT_FOUND" });
  });
});

/** An async iterable that the test feeds by hand. */
class PushQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private ended = false;
  private wake: (() => void) | undefined;

  push(item: T): void {
    this.items.push(item);
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.items.length > 0) yield this.items.shift()!;
      else if (this.ended) return;
      else await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
