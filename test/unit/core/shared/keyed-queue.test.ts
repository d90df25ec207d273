import { KeyedQueue } from "../../../../src/core/shared/keyed-queue";

const tick = () => new Promise((resolve) => setImmediate(resolve));

/** A piece of work that runs until released, noting when it starts and ends. */
function held(log: string[], name: string) {
  let release!: () => void;
  const done = new Promise<void>((resolve) => (release = resolve));
  return {
    release,
    work: async () => {
      log.push(`${name} starts`);
      await done;
      log.push(`${name} ends`);
      return name;
    },
  };
}

describe("KeyedQueue", () => {
  it("runs the operations on one key one at a time, in the order they came", async () => {
    const queue = new KeyedQueue();
    const log: string[] = [];
    const [a, b] = [held(log, "a"), held(log, "b")];
    const first = queue.run("vm", { what: "a" }, a.work);
    const second = queue.run("vm", { what: "b" }, b.work);
    await tick();
    expect(log).toEqual(["a starts"]);
    expect(queue.busy("vm")).toBe(true);
    b.release();
    a.release();
    expect(await Promise.all([first, second])).toEqual(["a", "b"]);
    expect(log).toEqual(["a starts", "a ends", "b starts", "b ends"]);
    expect(queue.busy("vm")).toBe(false);
  });

  it("lets go of a key at once after an operation that does all its work at once", () => {
    const queue = new KeyedQueue();
    const log: string[] = [];
    void queue.run("vm", { what: "a" }, () => log.push("a"));
    expect(queue.busy("vm")).toBe(false);
    void queue.run("vm", { what: "b" }, () => log.push("b"));
    // Both ran before anything was awaited: the second did not wait behind the first.
    expect(log).toEqual(["a", "b"]);
  });

  it("runs operations on different keys side by side", async () => {
    const queue = new KeyedQueue();
    const log: string[] = [];
    const [a, b] = [held(log, "a"), held(log, "b")];
    const both = Promise.all([queue.run("one", { what: "a" }, a.work), queue.run("two", { what: "b" }, b.work)]);
    await tick();
    expect(log).toEqual(["a starts", "b starts"]);
    a.release();
    b.release();
    await both;
  });

  it("lets the next one run after a failure", async () => {
    const queue = new KeyedQueue();
    const failed = queue.run("vm", { what: "fail" }, () => Promise.reject(new Error("no")));
    const thrown = queue.run("vm", { what: "throw" }, () => {
      throw new Error("sync");
    });
    await expect(failed).rejects.toThrow("no");
    await expect(thrown).rejects.toThrow("sync");
    await expect(queue.run("vm", { what: "ok" }, () => "ok")).resolves.toBe("ok");
  });

  it("drops a waiting operation whose caller stops waiting, without holding up those behind it", async () => {
    const queue = new KeyedQueue();
    const log: string[] = [];
    const a = held(log, "a");
    const running = queue.run("vm", { what: "a" }, a.work);
    const caller = new AbortController();
    const cancelled = queue.run("vm", { caller: { signal: caller.signal }, what: "b" }, async () => void log.push("b ran"));
    const after = queue.run("vm", { what: "c" }, async () => void log.push("c ran"));
    caller.abort();
    await expect(cancelled).rejects.toMatchObject({ kind: "cancelled", reason: "CANCELLED" });
    a.release();
    await Promise.all([running, after]);
    expect(log).toEqual(["a starts", "a ends", "c ran"]);
  });

  it("refuses at once a caller that stopped waiting already when it would have to wait, and lets a started one finish", async () => {
    const queue = new KeyedQueue();
    const caller = new AbortController();
    caller.abort();
    const holder = held([], "holder");
    const holding = queue.run("vm", { what: "hold" }, holder.work);
    await expect(queue.run("vm", { caller: { signal: caller.signal }, what: "x" }, () => "ran")).rejects.toMatchObject({ kind: "cancelled" });
    holder.release();
    await holding;
    const later = new AbortController();
    const log: string[] = [];
    const a = held(log, "a");
    const running = queue.run("vm", { caller: { signal: later.signal }, what: "a" }, a.work);
    await tick();
    later.abort();
    a.release();
    await expect(running).resolves.toBe("a");
  });

  it("runs an operation asked to go next right after the one running, before those waiting", async () => {
    const queue = new KeyedQueue();
    const log: string[] = [];
    const a = held(log, "a");
    const running = queue.run("vm", { what: "a" }, a.work);
    const waiting = queue.run("vm", { what: "b" }, async () => void log.push("b ran"));
    const next = queue.run("vm", { what: "settle", next: true }, async () => void log.push("settle ran"));
    a.release();
    await Promise.all([running, waiting, next]);
    expect(log).toEqual(["a starts", "a ends", "settle ran", "b ran"]);
  });

  it("refuses at once a nested wait that would close a circle, instead of hanging", async () => {
    const queue = new KeyedQueue();
    const log: string[] = [];
    const [onA, onB] = [held(log, "holding A"), held(log, "holding B")];
    const holdingA = queue.run("A", { what: "hold A" }, onA.work);
    const holdingB = queue.run("B", { what: "hold B" }, onB.work);
    await tick();
    // The operation holding A waits for B…
    const aWaitsForB = queue.run("B", { what: "use B", heldBy: "A" }, () => "A got B");
    // …so the one holding B may not wait for A.
    await expect(queue.run("A", { what: "use A", heldBy: "B" }, () => "B got A")).rejects.toMatchObject({ kind: "aborted", reason: "OPERATIONS_WOULD_DEADLOCK" });
    onB.release();
    await expect(aWaitsForB).resolves.toBe("A got B");
    onA.release();
    await Promise.all([holdingA, holdingB]);
    // Once nothing waits, the same nested wait is fine.
    await expect(queue.run("A", { what: "use A", heldBy: "B" }, () => "B got A")).resolves.toBe("B got A");
  });
});
