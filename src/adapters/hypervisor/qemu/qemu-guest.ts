/**
 * A VM that runs under QEMU, as the core handles it: QMP's events become the port's guest
 * events, and the end of the process becomes `exited`, with its cause (the guest powered off,
 * Steward killed it, or it ended unasked: a crash).
 */
import type { ChildProcess } from "node:child_process";
import type { GuestAddress, GuestAgentFacts, GuestEvent, GuestStatus, KillWho, RunningVm } from "../../../ports/hypervisor";
import type { HaltCause } from "../../../core/model/power-state";
import { guestAgentAbsent, guestCannotSleep } from "../../../ports/hypervisor-errors";
import * as net from "node:net";
import { ConsoleHub } from "../shared/console-hub";
import { GuestListeners } from "../shared/guest-listeners";
import { GuestAgent } from "./guest-agent";
import { QemuStats } from "./qemu-stats";
import { processAlive } from "./qemu-process";
import { openUnixSocket, type QmpClient, type QmpEvent } from "./qmp/qmp-client";
import { MonitorCommandError, MonitorTimeoutError } from "./qmp/monitor-connection";

/** How often an adopted QEMU, whose exit Steward cannot wait for as its parent, is looked for once its monitor closed. */
const GONE_POLL_MS = 20;

/** How long the console's socket may take to take Steward's connection. */
const CONSOLE_CONNECT_MS = 5000;
/** How long a command that needs the agent waits for it to answer, in a guest that is up already. */
const AGENT_ANSWER_MS = 3000;
/** How long guest-suspend-ram may take to refuse; it sends no reply when it works (the guest sleeps). */
const SUSPEND_REFUSAL_MS = 2000;

/** How the driver learns that the process ended: as its parent, or by watching its pid. */
export type ProcessWatch = { kind: "child"; child: ChildProcess } | { kind: "adopted" };

/** The statuses of QMP's query-status, as the port's. */
export function guestStatusOf(qmpStatus: string): GuestStatus {
  switch (qmpStatus) {
    case "running":
      return "running";
    case "suspended":
      return "suspended";
    case "shutdown":
      return "shutting-down";
    default:
      // paused, prelaunch, io-error, internal-error, watchdog, guest-panicked…: the CPUs do not run.
      return "paused";
  }
}

export class QemuGuest implements RunningVm {
  private current: GuestStatus;
  private readonly listeners = new GuestListeners();
  private ended = false;
  private released = false;
  /** What Steward did that ends the guest, so that its end is told as killed rather than crashed. */
  private killedBy: string | undefined;
  /** What QEMU said when the guest went down (its SHUTDOWN event's reason), or that it panicked. */
  private downReason: { cause: HaltCause; detail: string } | undefined;
  /** While its launch runs it (-S, then cont), its CPUs' stopping and running are not the guest's doing, and are not told. */
  private launching: boolean;
  /** Settles when the guest ended, with why; for the driver, which must not take the listeners' place. */
  readonly exited: Promise<string>;
  private settleExited!: (detail: string) => void;
  /** What the guest agent tells. */
  readonly agent: GuestAgentFacts = {
    addresses: async () => addressesOf(await this.askAgent("guest-network-get-interfaces", "read the addresses")),
    osRelease: async () => osReleaseOf(await this.askAgent("guest-get-osinfo", "read the OS release")),
  };
  /** The serial console: what the guest prints, kept and fanned out to readers. */
  readonly console: ConsoleHub;
  readonly stats: QemuStats;
  private consoleSocket: net.Socket | undefined;
  /** The connection to the guest agent, made when first needed. */
  private agentChannel: GuestAgent | undefined;
  private agentConnecting: Promise<GuestAgent> | undefined;

  constructor(
    readonly uuid: string,
    readonly name: string,
    readonly pid: number,
    readonly startedAt: Date,
    private readonly qmp: QmpClient,
    /** The host end of the guest agent's channel. */
    private readonly agentSocket: string,
    private readonly consolePath: string,
    /** The plan's disks' names, in its order. */
    disks: readonly string[],
    watch: ProcessWatch,
    status: GuestStatus,
    private readonly gone: () => void,
  ) {
    this.current = status;
    this.exited = new Promise((resolve) => (this.settleExited = resolve));
    this.console = new ConsoleHub((bytes) => this.typed(bytes));
    // Steward plugs no network interface into QEMU yet: none to count.
    this.stats = new QemuStats(qmp, pid, disks, []);
    this.launching = watch.kind === "child";
    qmp.onEvent((event) => this.heard(event));
    if (watch.kind === "child") {
      watch.child.once("exit", (code, signal) => this.exit(signal ? `QEMU was killed by ${signal}` : `QEMU exited with code ${code ?? "unknown"}`));
    } else {
      qmp.onClose(() => void this.untilGone());
    }
  }

  /**
   * Connects to the serial console's socket (QEMU takes one client: Steward), and from then on
   * reads everything the guest prints, so that its console never holds it up.
   */
  async connectConsole(): Promise<void> {
    const socket = await openUnixSocket(this.consolePath, CONSOLE_CONNECT_MS);
    this.consoleSocket = socket;
    socket.on("data", (chunk: Buffer) => this.console.received(chunk));
    socket.on("error", () => socket.destroy());
    socket.on("close", () => this.console.end());
  }

  /** Bytes typed into the console, handed to QEMU once its socket takes them. */
  private typed(bytes: Uint8Array): Promise<void> {
    const socket = this.consoleSocket;
    if (!socket || socket.destroyed) return Promise.reject(new Error(`the console of ${this.name} is closed`));
    return new Promise((resolve, reject) => socket.write(bytes, (error) => (error ? reject(error) : resolve())));
  }

  /** The launch ran the guest's CPUs: from now on, what they do is told. */
  launched(): void {
    this.launching = false;
  }

  status(): GuestStatus {
    return this.current;
  }

  onEvent(listener: (event: GuestEvent) => void): void {
    this.listeners.add(listener);
  }

  async pause(): Promise<void> {
    await this.qmp.execute("stop");
  }

  async unpause(): Promise<void> {
    await this.qmp.execute("cont");
  }

  /**
   * Resolves once the guest agent answers: the guest is up. Rejects with the signal's reason
   * when it aborts first, or with MonitorTimeoutError after `timeoutMs`.
   */
  async waitForAgent(signal: AbortSignal, timeoutMs: number): Promise<GuestAgent> {
    const agent = await this.agentConnection();
    await agent.sync(signal, timeoutMs);
    return agent;
  }

  /** S3 through the guest agent (guest-suspend-ram), which the guest honours if it can sleep; `suspended` follows. */
  async suspend(): Promise<void> {
    let agent: GuestAgent;
    try {
      agent = await this.waitForAgent(new AbortController().signal, AGENT_ANSWER_MS);
    } catch {
      throw guestAgentAbsent(this.name, "suspend the guest");
    }
    try {
      await agent.execute("guest-suspend-ram", undefined, SUSPEND_REFUSAL_MS);
    } catch (error) {
      if (error instanceof MonitorCommandError) throw guestCannotSleep(this.name, error.desc);
      // No reply: the agent does not answer this command when it works.
      if (!(error instanceof MonitorTimeoutError)) throw error;
    }
  }

  async resume(): Promise<void> {
    await this.qmp.execute("system_wakeup");
  }

  async powerButton(): Promise<void> {
    await this.qmp.execute("system_powerdown");
  }

  async kill(): Promise<void> {
    if (this.ended) return;
    this.killedBy ??= "killed";
    this.send(this.pid, "SIGKILL");
  }

  /** As machined's KillMachine: the signal to QEMU (`leader`) or to every process of its session (`all`); what follows is what QEMU does with it. */
  async signal(signal: number, who: KillWho): Promise<void> {
    if (this.ended) return;
    // QEMU ends the VM on SIGHUP, SIGINT and SIGTERM; its end is then Steward's doing.
    if (signal === 1 || signal === 2 || signal === 15) this.killedBy ??= `terminated on signal ${signal}`;
    this.send(who === "all" ? -this.pid : this.pid, signal);
  }

  /** Lets go of the guest without ending it (Steward stops): its handle tells nothing more, and QMP's socket is free for the next Steward. */
  release(): void {
    this.released = true;
    this.listeners.clear();
    this.qmp.close();
    this.agentChannel?.close();
    this.consoleSocket?.destroy();
  }

  /** One agent command's answer; GUEST_AGENT_ABSENT when the agent does not answer in time. */
  private async askAgent(command: string, what: string): Promise<unknown> {
    let agent: GuestAgent;
    try {
      agent = await this.waitForAgent(new AbortController().signal, AGENT_ANSWER_MS);
    } catch {
      throw guestAgentAbsent(this.name, what);
    }
    return agent.execute(command, undefined, AGENT_ANSWER_MS);
  }

  private async agentConnection(): Promise<GuestAgent> {
    // One connection at a time: QEMU's chardev takes one client, and callers at once share it.
    if (this.agentConnecting === undefined || this.agentChannel?.closed) {
      this.agentConnecting = GuestAgent.connect(this.agentSocket).then((agent) => (this.agentChannel = agent));
      this.agentConnecting.catch(() => (this.agentConnecting = undefined));
    }
    return this.agentConnecting;
  }

  private send(target: number, signal: NodeJS.Signals | number): void {
    try {
      process.kill(target, signal);
    } catch (error) {
      // Gone already: its end is on its way.
      if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
    }
  }

  private heard(event: QmpEvent): void {
    switch (event.name) {
      case "STOP":
        return this.become("paused", { kind: "stopped" });
      case "RESUME":
        return this.become("running", { kind: "resumed" });
      case "SUSPEND":
        return this.become("suspended", { kind: "suspended" });
      case "WAKEUP":
        return this.become("running", { kind: "woken" });
      case "RESET":
        return this.emit({ kind: "reset" });
      case "SHUTDOWN":
        return this.shutDown(event);
      case "GUEST_PANICKED":
        return this.panicked(event);
    }
  }

  private shutDown(event: QmpEvent): void {
    const reason = typeof event.data.reason === "string" ? event.data.reason : "";
    this.downReason ??= reason === "guest-panic" ? { cause: "crashed", detail: "the guest panicked" } : { cause: "shutdown", detail: shutdownDetail(reason) };
    this.current = "shutting-down";
    this.emit({ kind: "shutdown" });
  }

  private panicked(event: QmpEvent): void {
    const info = event.data.info as Record<string, unknown> | undefined;
    const detail = info ? `the guest panicked (${JSON.stringify(info)})` : "the guest panicked";
    this.downReason = { cause: "crashed", detail };
    this.emit({ kind: "panicked", detail });
  }

  private become(status: GuestStatus, event: GuestEvent): void {
    if (this.ended) return;
    this.current = status;
    if (!this.launching) this.emit(event);
  }

  /** An adopted QEMU closed its monitor: it is ending; its end is told once its pid is gone. */
  private async untilGone(): Promise<void> {
    if (this.released) return;
    while (await processAlive(this.pid)) await new Promise((resolve) => setTimeout(resolve, GONE_POLL_MS));
    this.exit("QEMU exited");
  }

  private exit(processEnd: string): void {
    if (this.ended) return;
    this.ended = true;
    this.qmp.close();
    this.agentChannel?.close();
    this.consoleSocket?.destroy();
    this.console.end();
    // A released guest is the next Steward's to follow and clean up after.
    if (this.released) {
      this.settleExited(processEnd);
      return;
    }
    this.gone();
    const { cause, detail } = this.killedBy ? { cause: "killed" as const, detail: this.killedBy } : (this.downReason ?? { cause: "crashed" as const, detail: `${processEnd} unasked` });
    this.settleExited(detail);
    this.emit({ kind: "exited", cause, detail });
    this.listeners.clear();
  }

  private emit(event: GuestEvent): void {
    if (!this.released) this.listeners.emit(event);
  }
}

function shutdownDetail(reason: string): string {
  switch (reason) {
    case "guest-shutdown":
      return "the guest powered off";
    case "host-qmp-quit":
      return "QEMU was told to quit";
    case "host-signal":
      return "QEMU was told to end by a signal";
    case "guest-reset":
      return "the guest reset, and QEMU was told not to reboot it";
    default:
      return reason ? `QEMU shut the guest down (${reason})` : "QEMU shut the guest down";
  }
}

/** guest-network-get-interfaces' answer as addresses, loopback left out. */
export function addressesOf(answer: unknown): GuestAddress[] {
  const addresses: GuestAddress[] = [];
  for (const nic of Array.isArray(answer) ? (answer as Record<string, unknown>[]) : []) {
    if (nic.name === "lo") continue;
    for (const ip of Array.isArray(nic["ip-addresses"]) ? (nic["ip-addresses"] as Record<string, unknown>[]) : []) {
      const address = ip["ip-address"];
      const family = ip["ip-address-type"] === "ipv6" ? "inet6" : ip["ip-address-type"] === "ipv4" ? "inet" : undefined;
      if (typeof address === "string" && family && address !== "127.0.0.1" && address !== "::1") addresses.push({ family, address });
    }
  }
  return addresses;
}

/** guest-get-osinfo's fields, under the os-release keys they come from. */
const OS_RELEASE_KEYS: Readonly<Record<string, string>> = {
  id: "ID",
  name: "NAME",
  "pretty-name": "PRETTY_NAME",
  version: "VERSION",
  "version-id": "VERSION_ID",
  variant: "VARIANT",
  "variant-id": "VARIANT_ID",
};

export function osReleaseOf(answer: unknown): Record<string, string> {
  const fields: Record<string, string> = {};
  const info = typeof answer === "object" && answer !== null ? (answer as Record<string, unknown>) : {};
  for (const [key, field] of Object.entries(OS_RELEASE_KEYS)) {
    const value = info[key];
    if (typeof value === "string" && value !== "") fields[field] = value;
  }
  return fields;
}
