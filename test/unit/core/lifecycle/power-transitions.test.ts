import type { PowerState } from "../../../../src/core/model/power-state";
import { POWER_TRANSITIONS, transitionFrom, type PowerAction } from "../../../../src/core/lifecycle/power-transitions";

const STATES: PowerState[] = ["Halted", "Transient", "Running", "Paused", "Suspended", "Halting", "Dying", "Crashed"];

/** The states each action is allowed from: Qubes' rules, as VmService's RPC comments give them. */
const ALLOWED: Record<PowerAction, PowerState[]> = {
  start: ["Halted"],
  shutdown: ["Running", "Paused", "Halting"],
  kill: ["Transient", "Running", "Paused", "Suspended", "Halting", "Dying", "Crashed"],
  pause: ["Running"],
  unpause: ["Paused"],
  suspend: ["Running"],
  resume: ["Suspended"],
};

describe("the power-state transition table", () => {
  it.each(Object.entries(ALLOWED) as [PowerAction, PowerState[]][])("allows %s from exactly its states", (action, allowed) => {
    expect(STATES.filter((state) => transitionFrom(state, action))).toEqual(allowed);
  });

  it("takes at most one row for a trigger from a state", () => {
    for (const state of STATES) {
      const triggers = POWER_TRANSITIONS.filter((row) => row.from.includes(state)).map((row) => row.on);
      expect(new Set(triggers).size).toBe(triggers.length);
    }
  });

  it("halts a VM whose guest exits from any state but Halted, telling domain-shutdown", () => {
    for (const state of STATES.filter((s) => s !== "Halted")) {
      const row = transitionFrom(state, "guest-exited")!;
      expect(row.to).toBe("Halted");
      expect(row.tells.map((tell) => tell({ name: "work", uuid: "u-work" }, {}).name)).toEqual(["domain-shutdown"]);
    }
  });

  it("tells a start killed under way as a halt, then a failed start", () => {
    expect(transitionFrom("Dying", "launch-failed")!.tells.map((tell) => tell({ name: "work", uuid: "u-work" }, { reason: "killed" }))).toEqual([
      { subject: "work", subjectUuid: "u-work", name: "domain-shutdown", kwargs: { cause: "killed", detail: "killed while it started" } },
      { subject: "work", subjectUuid: "u-work", name: "domain-start-failed", kwargs: { reason: "killed" } },
    ]);
  });

  it("tells how a guest that exited halted, as its driver said", () => {
    const told = transitionFrom("Crashed", "guest-exited")!.tells.map((tell) => tell({ name: "work", uuid: "u-work" }, { halt: { cause: "crashed", detail: "the guest panicked" } }));
    expect(told).toEqual([{ subject: "work", subjectUuid: "u-work", name: "domain-shutdown", kwargs: { cause: "crashed", detail: "the guest panicked" } }]);
  });

  it("ignores a guest that says it paused once it is paused already, so a pause is told once", () => {
    expect(transitionFrom("Running", "pause")!.to).toBe("Paused");
    expect(transitionFrom("Paused", "guest-stopped")).toBeUndefined();
  });
});
