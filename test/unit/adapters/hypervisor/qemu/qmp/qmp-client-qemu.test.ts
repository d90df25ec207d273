/** The QMP client against a real QEMU (a machine of nothing, so that it starts at once), which the test ends by its pid. */
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { QmpClient, type QmpEvent } from "../../../../../../src/adapters/hypervisor/qemu/qmp/qmp-client";
import { MonitorClosedError, MonitorCommandError } from "../../../../../../src/adapters/hypervisor/qemu/qmp/monitor-connection";
import { qemuInstallation } from "../../../../../fixtures/qemu-guests";
import { makeTempDir, removeDir } from "../../../../../fixtures/temp-dir";

describe("QmpClient with QEMU", () => {
  let dir: string;
  let qemu: ChildProcess | undefined;
  let socket: string;

  beforeEach(async () => {
    dir = makeTempDir("stqmp-");
    socket = path.join(dir, "qmp.sock");
    qemu = spawn(qemuInstallation().binary, ["-machine", "none", "-nodefaults", "-display", "none", "-S", "-qmp", `unix:${socket},server=on,wait=off`], { stdio: "ignore" });
    for (let tries = 0; !fs.existsSync(socket); tries++) {
      if (tries > 1000) throw new Error("QEMU did not open its QMP socket");
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  });

  afterEach(async () => {
    if (qemu && qemu.exitCode === null && qemu.signalCode === null) {
      const exited = new Promise((resolve) => qemu!.once("exit", resolve));
      qemu.kill("SIGKILL");
      await exited;
    }
    removeDir(dir);
  });

  it("negotiates, runs commands, tells QEMU's errors, and hears its SHUTDOWN before the socket closes at quit", async () => {
    const client = await QmpClient.connect(socket);
    const version = await client.execute<{ qemu: { major: number; minor: number; micro: number } }>("query-version");
    expect(client.version).toMatchObject(version.qemu);
    expect(client.capabilities).toContain("oob");

    await expect(client.execute("query-status")).resolves.toMatchObject({ status: "prelaunch", running: false });
    // Several under way at once, each to its own reply.
    const [name, status] = await Promise.all([client.execute("query-name"), client.execute("query-status")]);
    expect(name).toEqual({});
    expect(status).toMatchObject({ status: "prelaunch" });

    const refused = await client.execute("no-such-command").catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(MonitorCommandError);
    expect(refused).toMatchObject({ errorClass: "CommandNotFound" });
    const badArgument = await client.execute("query-cpus-fast", { unexpected: 1 }).catch((error: unknown) => error);
    expect(badArgument).toMatchObject({ errorClass: "GenericError" });

    const events: QmpEvent[] = [];
    client.onEvent((event) => events.push(event));
    const closed = new Promise<Error>((resolve) => client.onClose(resolve));
    await client.execute("quit").catch(() => undefined);
    expect(await closed).toBeInstanceOf(MonitorClosedError);
    expect(events.map((event) => [event.name, event.data.reason])).toEqual([["SHUTDOWN", "host-qmp-quit"]]);
    expect(events[0].time.getTime()).toBeGreaterThan(Date.now() - 60_000);
    await expect(client.execute("query-status")).rejects.toBeInstanceOf(MonitorClosedError);
  });
});
