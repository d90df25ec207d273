import { chooseDispid, type RandomBelow } from "../../../../src/core/vms/dispids";
import { MAX_DISPID } from "../../../../src/core/vms/properties/property-schema";
import { testContext } from "../../../fixtures/call-context";
import { coreForEach } from "../../../fixtures/test-core";

/** A random source that answers the numbers given, in turn, then the last one again and again. */
function scripted(...draws: number[]): RandomBelow & { draws: number[] } {
  const random = Object.assign((bound: number) => {
    const next = random.draws.length > 1 ? random.draws.shift()! : random.draws[0];
    expect(next).toBeLessThan(bound);
    return next;
  }, { draws });
  return random;
}

describe("chooseDispid", () => {
  it("draws from 1 to MAX_DISPID - 1, skipping the numbers taken", () => {
    expect(chooseDispid(() => false, scripted(0))).toBe(1);
    expect(chooseDispid(() => false, scripted(MAX_DISPID - 2))).toBe(MAX_DISPID - 1);
    expect(chooseDispid((n) => n === 42, scripted(41, 41, 6))).toBe(7);
  });

  it("finds the last free number when draws keep hitting taken ones, and says when there is none", () => {
    expect(chooseDispid((n) => n !== 5000, scripted(0))).toBe(5000);
    expect(chooseDispid(() => true, scripted(0))).toBeUndefined();
  });
});

describe("DispVM numbers", () => {
  const random = scripted(41);
  const built = coreForEach(undefined, undefined, random);
  const ctx = testContext();

  beforeEach(async () => {
    const core = built.current;
    await core.creation.create({ name: "tpl", klass: "TemplateVM", label: "black", template: "", properties: {}, pool: "", volumePools: {} }, ctx);
    await core.creation.create(
      { name: "dvm", klass: "AppVM", label: "red", template: "tpl", properties: { template_for_dispvms: true }, pool: "", volumePools: {} },
      ctx,
    );
  });

  it("are not reused while the event log tells of a removed DispVM that had one", async () => {
    const core = built.current;
    random.draws = [41];
    const first = await core.creation.createDisposable({ template: "dvm", label: "", idempotencyKey: "" }, ctx);
    expect(first.name).toBe("disp42");
    await core.removal.remove(first.name, false, ctx);
    random.draws = [41, 41, 99];
    const second = await core.creation.createDisposable({ template: "dvm", label: "", idempotencyKey: "" }, ctx);
    expect(second.name).toBe("disp100");
  });

  it("skip the names of other VMs, whatever their case, and numbers whose addresses a VM set", async () => {
    const core = built.current;
    await core.creation.create({ name: "Disp42", klass: "StandaloneVM", label: "red", template: "", properties: { ip: "10.138.0.43" }, pool: "", volumePools: {} }, ctx);
    random.draws = [41, 42, 43];
    expect((await core.creation.createDisposable({ template: "dvm", label: "", idempotencyKey: "" }, ctx)).name).toBe("disp44");
  });

  it("run out with RESOURCE_EXHAUSTED when every one is taken", async () => {
    const core = built.current;
    const taken = core.store.vms.anySets.bind(core.store.vms);
    jest.spyOn(core.store.vms, "anySets").mockImplementation((name, value) => name === "dispid" || taken(name, value));
    await expect(core.creation.createDisposable({ template: "dvm", label: "", idempotencyKey: "" }, ctx)).rejects.toMatchObject({ kind: "resource-exhausted", reason: "NO_FREE_DISPID" });
  });
});
