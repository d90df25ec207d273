/**
 * What every hypervisor driver must do, in the manner of containerd's snapshots testsuite: each
 * driver's test is one call of hypervisorContract, with a factory that makes a fresh host for
 * each test. The suite asserts only what src/ports/hypervisor.ts promises, so that it holds for
 * a driver whose guests are real processes: it waits for events rather than expecting them at
 * a given moment (an event may come during the call that caused it or just after), attaches
 * its listeners before it acts, and kills every guest it launched or adopted once a test ends,
 * whether the test passed or not; the factory's cleanup ends whatever is left on the host.
 */
import { DomainError } from "../../src/core/errors";
import type { LaunchPlan } from "../../src/core/model/launch-plan";
import type { GuestEvent, GuestStatus, Hypervisor, HypervisorKind, RunningVm } from "../../src/ports/hypervisor";
import { startAborted } from "../../src/ports/hypervisor-errors";

export interface HypervisorUnderTest {
  /** A driver on a fresh host: nothing runs on it yet. */
  hypervisor: Hypervisor;
  /**
   * Another driver on the same host, as after a restart of Steward: it adopts what runs. The
   * suite releases the driver before (release(): it lets go of its guests without ending them,
   * as a Steward that exits does; a QMP socket takes one client at a time) and uses no handle
   * of its afterwards.
   */
  restarted(): Promise<Hypervisor>;
  /**
   * A plan for a new VM (a new uuid at each call) that this driver can launch: a guest that
   * honours the power button within `shutdownMs` (never when undefined), whose launch takes at
   * least `bootMs` (so that an abort lands while it starts), and that can sleep (S3) once
   * launched when `sleeps` is set. A real driver boots a real guest for these (which takes
   * seconds under emulation), and may launch one that boots nothing when none is asked.
   */
  plan(name: string, options?: PlanOptions): LaunchPlan;
  /** Ends whatever still runs on the host and removes what the host left; run after each test. */
  cleanup(): Promise<void>;
  /** How long an event may take to come after what caused it, where the driver's guests are slower than EVENT_TIMEOUT_MS allows (emulated CPUs). */
  eventTimeoutMs?: number;
}

export interface PlanOptions {
  shutdownMs?: number;
  bootMs?: number;
  sleeps?: boolean;
}

/** How long an event may take to come after what caused it. */
const EVENT_TIMEOUT_MS = 2000;
/** How long the suite listens for events that must not come. */
const QUIET_MS = 100;
/** How long a guest that ignores the power button is watched running on. */
const IGNORED_MS = 300;
/** How long the guests that honour the power button may take to power off. */
const SHUTDOWN_MS = 50;
/** How long the guests of the abort tests take to boot. */
const BOOT_MS = 1000;
/** How far a handle's startedAt may be from the clock around its launch (a driver may read it from /proc). */
const CLOCK_SLACK_MS = 1000;

const KINDS: readonly HypervisorKind[] = ["qemu-kvm", "qemu-tcg", "sim"];
const START_ABORTED = startAborted("vm");

export function hypervisorContract(name: string, factory: () => Promise<HypervisorUnderTest>): void {
  describe(`the ${name} hypervisor`, () => {
    let host: HypervisorUnderTest | undefined;
    /** The driver the test talks to: the fresh one, or the last restarted one. */
    let driver: Hypervisor;
    /** The guests launched or adopted by `driver`, killed after the test unless they exited. */
    let watched: GuestWatch[] = [];

    beforeEach(async () => {
      host = await factory();
      driver = host.hypervisor;
      watched = [];
    });

    afterEach(async () => {
      const done = host;
      const left = watched.filter((watch) => !watch.exited);
      host = undefined;
      watched = [];
      for (const watch of left) {
        try {
          await watch.vm.kill();
          await watch.untilExited();
        } catch {
          // The factory's cleanup ends what a kill did not.
        }
      }
      await done?.cleanup();
    });

    const eventTimeout = (): number => host?.eventTimeoutMs ?? EVENT_TIMEOUT_MS;

    const under = (): HypervisorUnderTest => {
      if (!host) throw new Error("no host: the factory failed");
      return host;
    };

    const plan = (vm: string, options?: PlanOptions) => under().plan(vm, options);

    /** Follows a handle from now on, and kills it after the test. */
    const watch = (vm: RunningVm): GuestWatch => {
      const watching = new GuestWatch(vm, eventTimeout());
      watched.push(watching);
      return watching;
    };

    const launch = async (launchPlan: LaunchPlan, signal: AbortSignal = new AbortController().signal): Promise<GuestWatch> =>
      watch(await driver.launch(launchPlan, signal));

    /** The error a launch that must fail rejects with; a launch that succeeds is followed (and killed), and fails the test. */
    const refusedLaunch = async (launchPlan: LaunchPlan, signal: AbortSignal = new AbortController().signal): Promise<unknown> => {
      let launched: RunningVm;
      try {
        launched = await driver.launch(launchPlan, signal);
      } catch (error) {
        return error;
      }
      watch(launched);
      throw new Error(`the launch of ${launchPlan.name} succeeded, but it should have failed`);
    };

    /** Lets go of the current driver and takes the next one on the same host; the guests watched so far are its to hand over. */
    const restart = async (): Promise<Hypervisor> => {
      await driver.release();
      driver = await under().restarted();
      watched = [];
      return driver;
    };

    /** What the restarted driver hands over, by uuid, each followed from now on. */
    const adoptAll = async (): Promise<Map<string, GuestWatch>> => {
      const adopted = new Map<string, GuestWatch>();
      for (const vm of await driver.adopt()) {
        expect({ uuid: vm.uuid, adoptedTwice: adopted.has(vm.uuid) }).toEqual({ uuid: vm.uuid, adoptedTwice: false });
        adopted.set(vm.uuid, watch(vm));
      }
      return adopted;
    };

    /** A launch that was refused or aborted left nothing: a restarted driver hands over no guest of that uuid. */
    const expectNothingLeftOf = async (launchPlan: LaunchPlan): Promise<void> => {
      await restart();
      expect([...(await adoptAll()).keys()]).not.toContain(launchPlan.uuid);
    };

    it("describes itself the same way each time, with a kind", () => {
      const info = driver.info();
      expect(KINDS).toContain(info.kind);
      expect(typeof info.version).toBe("string");
      expect(Array.isArray(info.capabilities)).toBe(true);
      for (const capability of info.capabilities) expect(typeof capability).toBe("string");
      expect(driver.info()).toEqual(info);
    });

    it("finds nothing to adopt on a fresh host", async () => {
      expect(await driver.adopt()).toEqual([]);
    });

    describe("launch", () => {
      it("resolves once the guest runs, with a handle for the plan's uuid, started just now", async () => {
        const vmPlan = plan("work");
        const before = Date.now();
        const { vm } = await launch(vmPlan);
        const after = Date.now();

        expect(vm.uuid).toBe(vmPlan.uuid);
        expect(vm.status()).toBe("running");
        expect(vm.startedAt).toBeInstanceOf(Date);
        expect(vm.startedAt.getTime()).toBeGreaterThanOrEqual(before - CLOCK_SLACK_MS);
        expect(vm.startedAt.getTime()).toBeLessThanOrEqual(after + CLOCK_SLACK_MS);
        expect(Number.isInteger(vm.pid) && vm.pid >= 0).toBe(true);
      });

      it("refuses a second launch of a uuid that runs, and the first runs on", async () => {
        const vmPlan = plan("work");
        const first = await launch(vmPlan);

        await refusedLaunch(vmPlan);

        await first.quiet();
        expect(first.kinds()).not.toContain("exited");
        expect(first.vm.status()).toBe("running");
        await restart();
        const adopted = await adoptAll();
        expect([...adopted.keys()]).toEqual([vmPlan.uuid]);
        expect(adopted.get(vmPlan.uuid)!.vm.status()).toBe("running");
      });

      it("refuses a second launch of a uuid while the first is booting, and the first runs", async () => {
        const vmPlan = plan("slow", { bootMs: 200 });
        const first = driver.launch(vmPlan, new AbortController().signal);
        await sleep(20);
        await refusedLaunch(vmPlan);
        const running = watch(await first);
        expect(running.vm.status()).toBe("running");
        await restart();
        expect([...(await adoptAll()).keys()]).toEqual([vmPlan.uuid]);
      });

      it("keeps what the guest did before anyone listened for the first listener: no event is lost", async () => {
        const vm = await driver.launch(plan("work"), new AbortController().signal);
        await vm.kill();
        await sleep(QUIET_MS);
        // Only now does a listener come (as the core takes the handle some time after the launch).
        const late = watch(vm);
        expect(await late.next("exited")).toMatchObject({ cause: "killed" });
      });

      it("with a signal aborted already, rejects with START_ABORTED and leaves nothing running", async () => {
        const vmPlan = plan("work");
        const error = await refusedLaunch(vmPlan, AbortSignal.abort());
        expectStartAborted(error);
        await expectNothingLeftOf(vmPlan);

        // Nothing holds the uuid: it launches now.
        expect((await launch(vmPlan)).vm.status()).toBe("running");
      });

      it("aborted while the guest boots, rejects with START_ABORTED and leaves nothing running", async () => {
        const vmPlan = plan("slow", { bootMs: BOOT_MS });
        const abort = new AbortController();
        const launching = refusedLaunch(vmPlan, abort.signal);
        await sleep(50);
        abort.abort();
        expectStartAborted(await launching);
        await expectNothingLeftOf(vmPlan);
      });
    });

    describe("a running guest", () => {
      it("pauses (stopped) and unpauses (resumed)", async () => {
        const guest = await launch(plan("work"));

        await guest.vm.pause();
        await guest.next("stopped");
        expect(guest.vm.status()).toBe("paused");

        await guest.vm.unpause();
        await guest.next("resumed");
        expect(guest.vm.status()).toBe("running");
        expect(guest.kinds()).not.toContain("exited");
      });

      it("sleeps (suspended) and wakes (woken)", async () => {
        const guest = await launch(plan("work", { sleeps: true }));

        await guest.vm.suspend();
        await guest.next("suspended");
        expect(guest.vm.status()).toBe("suspended");

        await guest.vm.resume();
        await guest.next("woken");
        expect(guest.vm.status()).toBe("running");
        expect(guest.kinds()).not.toContain("exited");
      });

      it("shuts down at the power button when it honours it: shutdown, then exited (shutdown), once and last", async () => {
        const guest = await launch(plan("work", { shutdownMs: SHUTDOWN_MS }));

        await guest.vm.powerButton();
        await guest.next("shutdown", SHUTDOWN_MS + eventTimeout());
        const exited = await guest.next("exited");
        expect(exited).toMatchObject({ cause: "shutdown", detail: expect.any(String) });
        await guest.expectEndedOnce();
      });

      it("runs on when it ignores the power button, and can still be killed", async () => {
        const guest = await launch(plan("stubborn"));

        await guest.vm.powerButton();
        await sleep(IGNORED_MS);
        expect(guest.kinds()).not.toContain("shutdown");
        expect(guest.kinds()).not.toContain("exited");
        // The driver may or may not know the button was pressed.
        expect(["running", "shutting-down"]).toContain(guest.vm.status());

        await guest.vm.kill();
        expect(await guest.next("exited")).toMatchObject({ cause: "killed" });
        await guest.expectEndedOnce();
      });

      it("ends when killed: exited (killed), once and last", async () => {
        const guest = await launch(plan("work"));

        await guest.vm.kill();
        expect(await guest.next("exited")).toMatchObject({ cause: "killed", detail: expect.any(String) });
        await guest.expectEndedOnce();
      });

      it("ends when killed while paused", async () => {
        const guest = await launch(plan("work"));
        await guest.vm.pause();
        await guest.next("stopped");

        await guest.vm.kill();
        expect(await guest.next("exited")).toMatchObject({ cause: "killed" });
        await guest.expectEndedOnce();
      });

      it("ends once when killed while it shuts down, whichever comes first", async () => {
        const guest = await launch(plan("work", { shutdownMs: SHUTDOWN_MS }));

        await guest.vm.powerButton();
        await guest.vm.kill();
        const exited = await guest.next("exited", SHUTDOWN_MS + eventTimeout());
        expect(["killed", "shutdown"]).toContain(exited.cause);
        await sleep(SHUTDOWN_MS);
        await guest.expectEndedOnce();
      });
    });

    describe("after a restart", () => {
      it("hands over the guests that still run, with what they do, and not those that ended", async () => {
        const running = await launch(plan("running"));
        const paused = await launch(plan("paused"));
        await paused.vm.pause();
        await paused.next("stopped");
        const asleep = await launch(plan("asleep", { sleeps: true }));
        await asleep.vm.suspend();
        await asleep.next("suspended");
        const killed = await launch(plan("killed"));
        await killed.vm.kill();
        await killed.next("exited");
        const poweredOff = await launch(plan("powered-off", { shutdownMs: SHUTDOWN_MS }));
        await poweredOff.vm.powerButton();
        await poweredOff.next("exited", SHUTDOWN_MS + eventTimeout());
        const startedAt = new Map([running, paused, asleep].map(({ vm }) => [vm.uuid, vm.startedAt.getTime()]));

        await restart();
        const adopted = await adoptAll();

        const expected: { uuid: string; status: GuestStatus }[] = [
          { uuid: running.vm.uuid, status: "running" },
          { uuid: paused.vm.uuid, status: "paused" },
          { uuid: asleep.vm.uuid, status: "suspended" },
        ];
        const found = [...adopted.values()].map(({ vm }) => ({ uuid: vm.uuid, status: vm.status() }));
        expect(found.sort(byUuid)).toEqual(expected.sort(byUuid));
        // An adopted guest started when it was launched, not when it was adopted.
        for (const { vm } of adopted.values()) expect(Math.abs(vm.startedAt.getTime() - startedAt.get(vm.uuid)!)).toBeLessThanOrEqual(CLOCK_SLACK_MS);
      });

      it("tells an adopted guest's events to the listeners of its new handle", async () => {
        const vmPlan = plan("work");
        await launch(vmPlan);

        await restart();
        const guest = (await adoptAll()).get(vmPlan.uuid);
        expect(guest).toBeDefined();

        await guest!.vm.pause();
        await guest!.next("stopped");
        expect(guest!.vm.status()).toBe("paused");
        await guest!.vm.kill();
        expect(await guest!.next("exited")).toMatchObject({ cause: "killed" });
        await guest!.expectEndedOnce();

        await restart();
        expect([...(await adoptAll()).keys()]).toEqual([]);
      });
    });

    describe("optional capabilities, where a guest offers them", () => {
      it("stats: samples of numbers ≥ 0, taken just now, CPU time never going back, memory within its ceiling, a disk's I/O each", async () => {
        const launchPlan = plan("work");
        const { vm } = await launch(launchPlan);
        // Both drivers here keep stats; one that did not would leave `stats` out, and say so here.
        expect(vm.stats).toBeDefined();
        const stats = vm.stats!;

        const before = Date.now();
        const first = await stats.sample();
        const second = await stats.sample();
        const after = Date.now();
        for (const sample of [first, second]) {
          expect(sample.time).toBeInstanceOf(Date);
          expect(sample.time.getTime()).toBeGreaterThanOrEqual(before - CLOCK_SLACK_MS);
          expect(sample.time.getTime()).toBeLessThanOrEqual(after + CLOCK_SLACK_MS);
          for (const count of [sample.cpuTimeNs, sample.memoryBytes, sample.maxMemoryBytes, sample.rssBytes]) expect(Number.isFinite(count) && count >= 0).toBe(true);
          expect(sample.memoryBytes).toBeGreaterThan(0);
          expect(sample.memoryBytes).toBeLessThanOrEqual(sample.maxMemoryBytes);
          expect(sample.disks.map((disk) => disk.name)).toEqual(launchPlan.disks.map((disk) => disk.name));
        }
        expect(second.time.getTime()).toBeGreaterThanOrEqual(first.time.getTime());
        expect(second.cpuTimeNs).toBeGreaterThanOrEqual(first.cpuTimeNs);
      });

      it("stats: a paused guest's CPU time stands still", async () => {
        const guest = await launch(plan("work"));
        await guest.vm.pause();
        await guest.next("stopped");
        const first = await guest.vm.stats!.sample();
        await sleep(QUIET_MS * 2);
        const second = await guest.vm.stats!.sample();
        // Its vCPUs do not run; what a stopping thread finishes may still count, a few ms at most.
        expect(second.cpuTimeNs - first.cpuTimeNs).toBeLessThan(10e6);
      });

      it("stats: a sample of a guest that ended rejects", async () => {
        const guest = await launch(plan("work"));
        await guest.vm.kill();
        await guest.untilExited();
        await expect(guest.vm.stats!.sample()).rejects.toThrow();
      });

      it("console: a stream that takes bytes and ends when closed", async () => {
        const { vm } = await launch(plan("work"));
        // Both drivers here have consoles.
        expect(vm.console).toBeDefined();

        const stream = await vm.console!.open(new AbortController().signal);
        const drained = drain(stream.output);
        await within(stream.write(new TextEncoder().encode("\r")), eventTimeout(), "the console write");
        stream.close();
        await within(drained, eventTimeout(), "the end of the console output after close()");
      });

      it("console: a stream that ends when its signal aborts", async () => {
        const { vm } = await launch(plan("work"));
        expect(vm.console).toBeDefined();

        const abort = new AbortController();
        const stream = await vm.console!.open(abort.signal);
        const drained = drain(stream.output);
        abort.abort();
        try {
          await within(drained, eventTimeout(), "the end of the console output after its signal aborted");
        } finally {
          stream.close();
        }
      });
    });
  });
}

/** A handle's events as they come, to wait for one after the other. */
class GuestWatch {
  readonly events: GuestEvent[] = [];
  /** Where the next wait starts looking: past the events waited for already. */
  private cursor = 0;
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly vm: RunningVm,
    private readonly timeoutMs: number,
  ) {
    vm.onEvent((event) => {
      this.events.push(event);
      for (const waiter of [...this.waiters]) waiter();
    });
  }

  get exited(): boolean {
    return this.events.some((event) => event.kind === "exited");
  }

  kinds(): GuestEvent["kind"][] {
    return this.events.map((event) => event.kind);
  }

  /** The next event of `kind` after those waited for already; fails when none comes within `timeoutMs`. */
  next<K extends GuestEvent["kind"]>(kind: K, timeoutMs = this.timeoutMs): Promise<Extract<GuestEvent, { kind: K }>> {
    return this.waitFor(
      () => {
        const index = this.events.findIndex((event, at) => at >= this.cursor && event.kind === kind);
        if (index < 0) return undefined;
        this.cursor = index + 1;
        return this.events[index] as Extract<GuestEvent, { kind: K }>;
      },
      timeoutMs,
      `a ${kind} event`,
    );
  }

  /** Resolves once the guest exited, whatever was waited for before. */
  untilExited(timeoutMs = this.timeoutMs): Promise<true> {
    return this.waitFor(() => this.exited || undefined, timeoutMs, "an exited event");
  }

  /** Listens a while for events that must not come. */
  quiet(): Promise<void> {
    return sleep(QUIET_MS);
  }

  /** After a while of listening: exited came once, and nothing after it. */
  async expectEndedOnce(): Promise<void> {
    await this.quiet();
    const kinds = this.kinds();
    expect({ exitedEvents: kinds.filter((kind) => kind === "exited").length, last: kinds.at(-1) }).toEqual({ exitedEvents: 1, last: "exited" });
  }

  private waitFor<T>(found: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const value = found();
        if (value === undefined) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(value);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`no ${what} from ${this.vm.uuid} within ${timeoutMs} ms; heard: ${JSON.stringify(this.events)}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }
}

function expectStartAborted(error: unknown): void {
  expect(error).toBeInstanceOf(DomainError);
  expect(error).toMatchObject({ kind: START_ABORTED.kind, reason: START_ABORTED.reason });
}

function byUuid(a: { uuid: string }, b: { uuid: string }): number {
  return a.uuid.localeCompare(b.uuid);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Reads a stream to its end. */
async function drain(output: AsyncIterable<Uint8Array>): Promise<void> {
  for await (const chunk of output) void chunk;
}

/** `promise`, or a failure naming `what` when it does not settle within `timeoutMs`. */
async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not come within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
