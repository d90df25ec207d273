import { createdByTag } from "../../../../src/core/vms/vm-tags";

const TAG = /^[A-Za-z0-9_.:-]{1,255}$/;

describe("the tag of who made a VM", () => {
  it.each([
    ["dom0", "created-by-dom0"],
    ["cert:orchestrator-1", "created-by-cert:orchestrator-1"],
    ["cert:Ops Team ü", "created-by-cert:Ops_20Team_20_c3_bc"],
    ["cert:a_b", "created-by-cert:a_5fb"],
  ])("of %j is %j, a valid tag", (caller, tag) => {
    expect(createdByTag(caller)).toBe(tag);
    expect(createdByTag(caller)).toMatch(TAG);
  });

  it("differs for callers that differ only in what is encoded", () => {
    expect(createdByTag("cert:a b")).not.toBe(createdByTag("cert:a_20b"));
  });

  it("fits a tag whatever the identity's length", () => {
    expect(createdByTag(`cert:${"é".repeat(300)}`)).toMatch(TAG);
  });
});
