import { Duplex } from "node:stream";
import { QmpClient } from "../../../../../../src/adapters/hypervisor/qemu/qmp/qmp-client";
import {
  MonitorClosedError,
  MonitorCommandError,
  type MonitorEvent,
  MonitorTimeoutError,
} from "../../../../../../src/adapters/hypervisor/qemu/qmp/monitor-connection";

const GREETING = '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7"}, "capabilities": ["oob"]}}\r\n';

/** QEMU's end of a QMP socket, scripted by the test: what the client wrote, and bytes sent back as QEMU would. */
class FakeQemu {
  readonly commands: Record<string, unknown>[] = [];
  readonly socket: Duplex;
  private written = "";
  private readonly waiters: (() => void)[] = [];

  constructor() {
    this.socket = new Duplex({
      read() {},
      write: (chunk: Buffer, _encoding, done) => {
        this.written += chunk.toString("utf8");
        let end: number;
        while ((end = this.written.indexOf("\n")) >= 0) {
          this.commands.push(JSON.parse(this.written.slice(0, end)) as Record<string, unknown>);
          this.written = this.written.slice(end + 1);
        }
        for (const waiter of this.waiters.splice(0)) waiter();
        done();
      },
    });
  }

  send(text: string | Buffer): void {
    this.socket.push(typeof text === "string" ? Buffer.from(text) : text);
  }

  reply(id: unknown, value: unknown): void {
    this.send(JSON.stringify({ return: value, id }) + "\r\n");
  }

  /** The `count`-th command the client sent (from 1), once it came. */
  async command(count: number): Promise<Record<string, unknown>> {
    while (this.commands.length < count) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.commands[count - 1];
  }

  /** Greets, and answers qmp_capabilities: the client is ready. */
  async negotiate(): Promise<QmpClient> {
    const connecting = QmpClient.over(this.socket, { limits: { commandTimeoutMs: 1000, maxLineBytes: 4096, maxPending: 4 } });
    this.send(GREETING);
    const capabilities = await this.command(1);
    expect(capabilities.execute).toBe("qmp_capabilities");
    this.reply(capabilities.id, {});
    return connecting;
  }

  /** The socket dies, as when QEMU exits. */
  hangUp(): void {
    this.socket.destroy();
  }
}

describe("QmpClient", () => {
  let qemu: FakeQemu;
  beforeEach(() => {
    qemu = new FakeQemu();
  });
  afterEach(() => qemu.hangUp());

  it("reads the greeting, negotiates capabilities, and tells QEMU's version", async () => {
    const client = await qemu.negotiate();
    expect(client.version).toEqual({ major: 7, minor: 2, micro: 22, package: "Debian 1:7.2+dfsg-7" });
    expect(client.capabilities).toEqual(["oob"]);
    expect(qemu.commands).toEqual([{ execute: "qmp_capabilities", id: expect.any(Number) }]);
  });

  it("refuses a peer that does not greet as QMP does, and closes the connection", async () => {
    const connecting = QmpClient.over(qemu.socket, { timeoutMs: 1000 });
    qemu.send('{"hello": "world"}\n');
    await expect(connecting).rejects.toThrow(/did not greet as QMP/);
    expect(qemu.socket.destroyed).toBe(true);
  });

  it("gives up when no greeting comes in time", async () => {
    await expect(QmpClient.over(qemu.socket, { timeoutMs: 50 })).rejects.toBeInstanceOf(MonitorTimeoutError);
  });

  it("sends a command with its arguments and an id, and resolves with its return", async () => {
    const client = await qemu.negotiate();
    const status = client.execute("query-status");
    const stop = client.execute("human-monitor-command", { "command-line": "info version" });
    const [first, second] = [await qemu.command(2), await qemu.command(3)];
    expect(first).toEqual({ execute: "query-status", id: expect.any(Number) });
    expect(second).toEqual({ execute: "human-monitor-command", arguments: { "command-line": "info version" }, id: expect.any(Number) });
    expect(first.id).not.toEqual(second.id);

    // Replies matched by id, whatever their order.
    qemu.reply(second.id, "7.2.22\r\n");
    qemu.reply(first.id, { status: "running", running: true });
    await expect(status).resolves.toEqual({ status: "running", running: true });
    await expect(stop).resolves.toBe("7.2.22\r\n");
  });

  it("rejects with QEMU's error class and description", async () => {
    const client = await qemu.negotiate();
    const refused = client.execute("frobnicate");
    const sent = await qemu.command(2);
    qemu.send(JSON.stringify({ error: { class: "CommandNotFound", desc: "The command frobnicate has not been found" }, id: sent.id }) + "\r\n");
    const error = await refused.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(MonitorCommandError);
    expect(error).toMatchObject({ command: "frobnicate", errorClass: "CommandNotFound", desc: "The command frobnicate has not been found" });
  });

  it("tells events to every listener, with QEMU's timestamp, in between replies", async () => {
    const client = await qemu.negotiate();
    const heard: MonitorEvent[] = [];
    const also: string[] = [];
    client.onEvent((event) => heard.push(event));
    const stop = client.onEvent((event) => also.push(event.name));
    const status = client.execute("query-status");
    const sent = await qemu.command(2);
    qemu.send('{"timestamp": {"seconds": 1700000000, "microseconds": 250000}, "event": "STOP"}\r\n');
    qemu.reply(sent.id, { status: "paused", running: false });
    await status;
    stop();
    qemu.send('{"timestamp": {"seconds": 1700000001, "microseconds": 0}, "event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}\r\n');
    await new Promise((resolve) => setImmediate(resolve));

    expect(heard).toEqual([
      { name: "STOP", data: {}, time: new Date(1700000000250) },
      { name: "SHUTDOWN", data: { guest: true, reason: "guest-shutdown" }, time: new Date(1700000001000) },
    ]);
    expect(also).toEqual(["STOP"]);
  });

  it("takes lines split across reads and several lines in one read, multi-byte characters included", async () => {
    const connecting = QmpClient.over(qemu.socket, { timeoutMs: 1000 });
    for (const byte of Buffer.from(GREETING)) qemu.send(Buffer.from([byte]));
    const capabilities = await qemu.command(1);
    qemu.reply(capabilities.id, {});
    const client = await connecting;
    const events: MonitorEvent[] = [];
    client.onEvent((event) => events.push(event));

    const first = client.execute("qom-get", { path: "/machine", property: "type" });
    const second = client.execute("query-name");
    const [a, b] = [await qemu.command(2), await qemu.command(3)];
    // Two replies and an event merged into one read, then a reply whose "é" is cut between its two bytes.
    qemu.send(`{"return": "pc-i440fx-7.2", "id": ${String(a.id)}}\r\n{"event": "RESUME", "data": {}, "timestamp": {"seconds": 1, "microseconds": 0}}\r\n`);
    const name = Buffer.from(`{"return": {"name": "café"}, "id": ${String(b.id)}}\r\n`);
    const cut = name.indexOf(Buffer.from("é")) + 1;
    qemu.send(name.subarray(0, cut));
    qemu.send(name.subarray(cut));

    await expect(first).resolves.toBe("pc-i440fx-7.2");
    await expect(second).resolves.toEqual({ name: "café" });
    expect(events.map((event) => event.name)).toEqual(["RESUME"]);
  });

  it("fails a command that gets no reply in time, drops the late reply, and stays usable", async () => {
    const client = await qemu.negotiate();
    const slow = client.execute("query-status", undefined, { timeoutMs: 30 });
    const late = await qemu.command(2);
    await expect(slow).rejects.toBeInstanceOf(MonitorTimeoutError);

    qemu.reply(late.id, { status: "running" });
    const next = client.execute("query-name");
    const sent = await qemu.command(3);
    qemu.reply(sent.id, { name: "work" });
    await expect(next).resolves.toEqual({ name: "work" });
    expect(client.closed).toBe(false);
  });

  it("fails every command under way, and each later one, when the socket dies; and says so once", async () => {
    const client = await qemu.negotiate();
    const closes: Error[] = [];
    client.onClose((error) => closes.push(error));
    const first = client.execute("query-status");
    const second = client.execute("query-name");
    await qemu.command(3);

    qemu.hangUp();
    await expect(first).rejects.toBeInstanceOf(MonitorClosedError);
    await expect(second).rejects.toBeInstanceOf(MonitorClosedError);
    await expect(client.execute("query-status")).rejects.toBeInstanceOf(MonitorClosedError);
    expect(client.closed).toBe(true);
    expect(closes).toHaveLength(1);
    const late: Error[] = [];
    client.onClose((error) => late.push(error));
    expect(late).toEqual(closes);
  });

  it("drops the connection when a line grows past its bound, without keeping the bytes", async () => {
    const client = await qemu.negotiate();
    const waiting = client.execute("query-status");
    await qemu.command(2);
    qemu.send('{"return": "' + "x".repeat(2000));
    qemu.send("x".repeat(3000));
    const error = await waiting.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(MonitorClosedError);
    expect((error as Error).message).toMatch(/past 4096 bytes/);
    expect(qemu.socket.destroyed).toBe(true);
  });

  it("drops the connection when QEMU sends a line that is not JSON", async () => {
    const client = await qemu.negotiate();
    const waiting = client.execute("query-status");
    await qemu.command(2);
    qemu.send("this is not JSON\r\n");
    await expect(waiting).rejects.toThrow(/not a JSON object/);
    expect(client.closed).toBe(true);
  });

  it("refuses more commands than may wait at once, and takes them again once replies come", async () => {
    const client = await qemu.negotiate();
    const waiting = [1, 2, 3, 4].map(() => client.execute("query-status"));
    await expect(client.execute("query-name")).rejects.toThrow(/4 monitor commands wait/);
    for (let count = 2; count <= 5; count++) qemu.reply((await qemu.command(count)).id, {});
    await Promise.all(waiting);
    const next = client.execute("query-name");
    qemu.reply((await qemu.command(6)).id, { name: "x" });
    await expect(next).resolves.toEqual({ name: "x" });
  });
});
