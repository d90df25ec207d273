import { SimHost, SimHypervisor } from "../../../../../src/adapters/hypervisor/sim/sim-hypervisor";
import type { DomainError } from "../../../../../src/core/errors";
import { startAborted } from "../../../../../src/ports/hypervisor-errors";
import { killAll, listen, simPlan, sleep, until } from "../../../../fixtures/sim-guests";

/** The simulator's own cues, which no other driver has. */
describe("the simulator's cues", () => {
  let host: SimHost;
  let hypervisor: SimHypervisor;

  beforeEach(() => {
    host = new SimHost();
    hypervisor = new SimHypervisor(host);
  });

  afterEach(() => killAll(host));

  it("sim-start-fails: the launch rejects with a plain failure, not START_ABORTED, and leaves nothing running", async () => {
    const plan = simPlan("broken", { "sim-start-fails": "1" });
    const error = await hypervisor.launch(plan, new AbortController().signal).then(
      () => undefined,
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(Error);
    expect((error as Partial<DomainError>).reason).not.toBe(startAborted("broken").reason);
    expect(await new SimHypervisor(host).adopt()).toEqual([]);
    expect(host.guests.size).toBe(0);

    // Nothing holds the uuid: without the cue, it launches.
    const vm = await hypervisor.launch({ ...plan, features: {} }, new AbortController().signal);
    expect(vm.status()).toBe("running");
  });

  it("sim-start-ms: the launch takes that long", async () => {
    const before = Date.now();
    await hypervisor.launch(simPlan("slow", { "sim-start-ms": "150" }), new AbortController().signal);
    // Timers may fire a millisecond early by Date.now().
    expect(Date.now() - before).toBeGreaterThanOrEqual(145);
  });

  it("sim-shutdown-ms: the guest powers off that long after the power button", async () => {
    const vm = await hypervisor.launch(simPlan("work", { "sim-shutdown-ms": "150" }), new AbortController().signal);
    const events = listen(vm);
    const pressed = Date.now();
    await vm.powerButton();
    await sleep(50);
    expect(events).toEqual([]);
    await until(() => events.length === 2, 2000);
    expect(Date.now() - pressed).toBeGreaterThanOrEqual(145);
    expect(events).toEqual([{ kind: "shutdown" }, { kind: "exited", cause: "shutdown", detail: expect.any(String) }]);
  });

  it("without sim-shutdown-ms, the guest honours the power button", async () => {
    const vm = await hypervisor.launch(simPlan("work", {}), new AbortController().signal);
    const events = listen(vm);
    await vm.powerButton();
    await until(() => events.some((event) => event.kind === "exited"), 2000);
    expect(events.map((event) => event.kind)).toEqual(["shutdown", "exited"]);
  });
});
