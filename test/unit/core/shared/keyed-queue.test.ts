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
    const first = queue.run("vm", undefined, "a", a.work);
    const second = queue.run("vm", undefined, "b", b.work);
    await tick();
    expect(log).toEqual(["a starts"]);
    expect(queue.busy("vm")).toBe(true);
    b.release();
    a.release();
    expect(await Promise.all([first, second])).toEqual(["a", "b"]);
    expect(log).toEqual(["a starts", "a ends", "b starts", "b ends"]);
    expect(queue.busy("vm")).toBe(false);
  });

  it("runs operations on different keys side by side", async () => {
    const queue = new KeyedQueue();
    const log: string[] = [];
    const [a, b] = [held(log, "a"), held(log, "b")];
    const both = Promise.all([queue.run("one", undefined, "a", a.work), queue.run("two", undefined, "b", b.work)]);
    await tick();
    expect(log).toEqual(["a starts", "b starts"]);
    a.release();
    b.release();
    await both;
  });

  it("lets the next one run after a failure", async () => {
    const queue = new KeyedQueue();
    const failed = queue.run("vm", undefined, "fail", () => Promise.reject(new Error("no")));
    const thrown = queue.run("vm", undefined, "throw", () => {
      throw new Error("sync");
    });
    await expect(failed).rejects.toThrow("no");
    await expect(thrown).rejects.toThrow("sync");
    await expect(queue.run("vm", undefined, "ok", () => "ok")).resolves.toBe("ok");
  });

  it("drops a waiting operation whose caller stops waiting, without holding up those behind it", async () => {
    const queue = new KeyedQueue();
    const log: string[] = [];
    const a = held(log, "a");
    const running = queue.run("vm", undefined, "a", a.work);
    const caller = new AbortController();
    const cancelled = queue.run("vm", caller.signal, "b", async () => void log.push("b ran"));
    const after = queue.run("vm", undefined, "c", async () => void log.push("c ran"));
    caller.abort();
    await expect(cancelled).rejects.toMatchObject({ kind: "cancelled", reason: "CANCELLED" });
    a.release();
    await Promise.all([running, after]);
    expect(log).toEqual(["a starts", "a ends", "c ran"]);
  });

  it("refuses at once a caller that stopped waiting already, and lets a started one finish", async () => {
    const queue = new KeyedQueue();
    const caller = new AbortController();
    caller.abort();
    await expect(queue.run("vm", caller.signal, "x", () => "ran")).rejects.toMatchObject({ kind: "cancelled" });
    const later = new AbortController();
    const log: string[] = [];
    const a = held(log, "a");
    const running = queue.run("vm", later.signal, "a", a.work);
    await tick();
    later.abort();
    a.release();
    await expect(running).resolves.toBe("a");
  });
});
