import { Revert } from "../../../../src/core/shared/revert";

describe("Revert", () => {
  it("undoes the steps done, the latest first, when a later one fails, and rethrows", async () => {
    const undone: string[] = [];
    const failure = new Error("step 3 failed");
    await expect(
      Revert.run(async (revert) => {
        revert.add(() => void undone.push("step 1"));
        revert.add(undefined); // a step with nothing to undo
        revert.add(async () => void undone.push("step 2"));
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(undone).toEqual(["step 2", "step 1"]);
  });

  it("keeps the steps when the work succeeds", async () => {
    const undone: string[] = [];
    await expect(Revert.run(async (revert) => (revert.add(() => void undone.push("x")), 42))).resolves.toBe(42);
    expect(undone).toEqual([]);
  });

  it("goes on undoing when an undo fails, and tells of it", async () => {
    const undone: string[] = [];
    const told: unknown[] = [];
    const revert = new Revert((error) => told.push(error));
    revert.add(() => void undone.push("first"));
    revert.add(() => {
      throw new Error("cannot undo");
    });
    await revert.fail();
    expect(undone).toEqual(["first"]);
    expect(told).toEqual([new Error("cannot undo")]);
    await revert.fail(); // once undone, nothing is undone twice
    expect(undone).toEqual(["first"]);
  });
});
