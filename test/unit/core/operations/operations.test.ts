import { EventLog } from "../../../../src/core/events/event-log";
import { callCancelled, DomainError } from "../../../../src/core/errors";
import { Operations, OPERATION_RETENTION_MS } from "../../../../src/core/operations/operations";
import { HmacSigner } from "../../../../src/adapters/crypto/hmac-signer";
import { PageTokens } from "../../../../src/core/shared/page-token";
import { RequestLedger } from "../../../../src/core/shared/request-ledger";
import type { Clock } from "../../../../src/ports/clock";
import { testContext } from "../../../fixtures/call-context";
import { GATED_COPY_BYTES, gatedCopies } from "../../../fixtures/participants";
import { LogCapture } from "../../../fixtures/log-capture";
import { storeForEach } from "../../../fixtures/temp-store";
import { coreForEach } from "../../../fixtures/test-core";
import { SimHypervisor } from "../../../../src/adapters/hypervisor/sim/sim-hypervisor";

const result = (text: string) => ({ type: "test.Result", bytes: new TextEncoder().encode(text) });
const spec = (requestId = "", request: object = {}) => ({ kind: "backup" as const, method: "test/Work", unit: "steps" as const, requestId, request });

/** A gate that work waits at until the test opens it, or the work's signal aborts. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  const wait = (signal: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      void opened.then(resolve);
      signal.addEventListener("abort", () => reject(callCancelled("waiting at the gate")), { once: true });
    });
  return { open, wait };
}

describe("Operations", () => {
  const store = storeForEach();
  let now: Date;
  const clock: Clock = { now: () => now };
  let operations: Operations;
  beforeEach(() => {
    now = new Date("2026-06-01T10:00:00Z");
    const logs = new LogCapture();
    operations = new Operations(store.current, new EventLog(store.current, clock), new RequestLedger(store.current, clock), clock, logs.log, new PageTokens(new HmacSigner(store.current.host().secret)), 20);
  });

  it("answers done with the result when the work ends at once, and keeps it", async () => {
    const op = await operations.start(spec(), testContext(), { check: () => undefined, work: async () => "made", encode: result });
    expect(op).toMatchObject({ outcome: "succeeded", kind: "backup", caller: "dom0", result: result("made") });
    expect(op.name).toMatch(/^operations\/[0-9a-f-]{36}$/);
    expect(operations.get(op.name)).toEqual(op);
  });

  it("answers still running when the work outlasts the moment, and ends it later", async () => {
    const { open, wait } = gate();
    const op = await operations.start(spec(), testContext(), { check: () => undefined, work: (ctx) => wait(ctx.signal).then(() => "late"), encode: result });
    expect(op.outcome).toBe("running");
    expect(store.current.operations.get(op.name)?.outcome).toBe("running");
    const waiting = operations.wait(op.name, 5000, new AbortController().signal);
    open();
    expect((await waiting).outcome).toBe("succeeded");
    expect(store.current.operations.get(op.name)?.result).toEqual(result("late"));
  });

  it("refuses a request its check refuses, with no operation made", async () => {
    const refusal = new DomainError("not-found", "VM_NOT_FOUND" as never, "no VM named x");
    await expect(operations.start(spec(), testContext(), { check: () => { throw refusal; }, work: async () => "never", encode: result })).rejects.toBe(refusal);
    expect(operations.list({ filter: "", pageSize: 0, pageToken: "" }).operations).toEqual([]);
  });

  it("keeps a failure's error, and an unexpected one's bare fact", async () => {
    const failed = await operations.start(spec(), testContext(), { check: () => undefined, work: async () => { throw new DomainError("failed-precondition", "VM_NOT_HALTED" as never, "work is running"); }, encode: result });
    expect(failed).toMatchObject({ outcome: "failed", error: { kind: "failed-precondition", reason: "VM_NOT_HALTED", message: "work is running" } });
    const broken = await operations.start(spec(), testContext(), { check: () => undefined, work: async () => { throw new Error("secret detail"); }, encode: result });
    expect(broken.error).toEqual({ kind: "internal", reason: "", message: expect.not.stringContaining("secret") as unknown, metadata: {} });
  });

  it("cancels a running operation: its work stops and it ends cancelled; cancelling again, or an ended one, changes nothing", async () => {
    const { wait } = gate();
    const op = await operations.start(spec(), testContext(), { check: () => undefined, work: (ctx) => wait(ctx.signal).then(() => "never"), encode: result });
    operations.cancel(op.name);
    operations.cancel(op.name);
    const ended = await operations.wait(op.name, 5000, new AbortController().signal);
    expect(ended).toMatchObject({ outcome: "cancelled", cancelRequested: true, error: { kind: "cancelled", reason: "CANCELLED" } });
    operations.cancel(op.name);
    expect(operations.get(op.name)).toEqual(ended);
  });

  it("returns the same operation for a retry with the same request_id, and refuses the id for another request", async () => {
    const id = "0b4a9c3e-2d1f-4e5a-9b8c-7d6e5f4a3b2c";
    let runs = 0;
    const job = { check: () => undefined, work: async () => `run ${++runs}`, encode: result };
    const first = await operations.start(spec(id, { vm: "a" }), testContext(), job);
    const again = await operations.start(spec(id, { vm: "a" }), testContext(), job);
    expect(again.name).toBe(first.name);
    expect(runs).toBe(1);
    await expect(operations.start(spec(id, { vm: "b" }), testContext(), job)).rejects.toMatchObject({ reason: "REQUEST_ID_REUSED" });
    operations.delete(first.name);
    await expect(operations.start(spec(id, { vm: "a" }), testContext(), job)).rejects.toMatchObject({ reason: "OPERATION_RESULT_GONE" });
  });

  it("keeps a long operation's request_id from its end, not its beginning", async () => {
    const id = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f";
    const { open, wait } = gate();
    const job = { check: () => undefined, work: (ctx: { signal: AbortSignal }) => wait(ctx.signal).then(() => "long"), encode: result };
    const op = await operations.start(spec(id, { vm: "a" }), testContext(), job);
    // It runs for 23 hours, and is retried 7 hours after it ended: 30 hours after it began.
    now = new Date(now.getTime() + 23 * 3600_000);
    open();
    await operations.wait(op.name, 5000, new AbortController().signal);
    now = new Date(now.getTime() + 7 * 3600_000);
    expect((await operations.start(spec(id, { vm: "a" }), testContext(), job)).name).toBe(op.name);
  });

  it("lists the newest first, filtered and paged, and forgets ended ones after the retention", async () => {
    const names: string[] = [];
    for (const kind of ["backup", "restore", "backup"] as const) {
      now = new Date(now.getTime() + 1000);
      names.push((await operations.start({ ...spec(), kind }, testContext(), { check: () => undefined, work: async () => kind, encode: result })).name);
    }
    const page1 = operations.list({ filter: "kind=backup", pageSize: 1, pageToken: "" });
    expect(page1.operations.map((op) => op.name)).toEqual([names[2]]);
    const page2 = operations.list({ filter: "kind=backup", pageSize: 1, pageToken: page1.nextPageToken });
    expect([page2.operations.map((op) => op.name), page2.nextPageToken]).toEqual([[names[0]], ""]);
    expect(() => operations.list({ filter: "kind=restore", pageSize: 1, pageToken: page1.nextPageToken })).toThrow(expect.objectContaining({ reason: "INVALID_PAGE_TOKEN" }) as Error);
    expect(operations.list({ filter: "done=false", pageSize: 0, pageToken: "" }).operations).toEqual([]);
    expect(operations.list({ filter: "done=true AND kind=restore", pageSize: 0, pageToken: "" }).operations.map((op) => op.name)).toEqual([names[1]]);
    for (const bad of ["kind", "done=maybe", "size>3", "kind=backup OR kind=restore"]) {
      expect(() => operations.list({ filter: bad, pageSize: 0, pageToken: "" })).toThrow(expect.objectContaining({ reason: "INVALID_OPERATION_FILTER" }) as Error);
    }
    now = new Date(now.getTime() + OPERATION_RETENTION_MS + 1000);
    expect(() => operations.get(names[0])).toThrow(expect.objectContaining({ reason: "OPERATION_NOT_FOUND" }) as Error);
    expect(operations.list({ filter: "", pageSize: 0, pageToken: "" }).operations).toEqual([]);
  });

  it("refuses a name that is no operation's, and deletes only ended operations", async () => {
    for (const name of ["", "operations/", "operations/xyz", "ops/0b4a9c3e-2d1f-4e5a-9b8c-7d6e5f4a3b2c"]) {
      expect(() => operations.get(name)).toThrow(expect.objectContaining({ reason: "INVALID_OPERATION_NAME" }) as Error);
    }
    const { open, wait } = gate();
    const op = await operations.start(spec(), testContext(), { check: () => undefined, work: (ctx) => wait(ctx.signal).then(() => "x"), encode: result });
    expect(() => operations.delete(op.name)).toThrow(expect.objectContaining({ reason: "OPERATION_RUNNING" }) as Error);
    open();
    await operations.wait(op.name, 5000, new AbortController().signal);
    operations.delete(op.name);
    operations.delete(op.name);
    expect(() => operations.get(op.name)).toThrow(expect.objectContaining({ reason: "OPERATION_NOT_FOUND" }) as Error);
  });

  it("ends as interrupted what a Steward that stopped left running, telling of it", async () => {
    const left = { ...(await operations.start(spec(), testContext(), { check: () => undefined, work: async () => "x", encode: result })), name: "operations/0b4a9c3e-2d1f-4e5a-9b8c-7d6e5f4a3b2c", outcome: "running" as const, endedAt: undefined, result: undefined };
    store.current.operations.put(left);
    operations.endInterrupted();
    expect(operations.get(left.name)).toMatchObject({ outcome: "failed", error: { kind: "aborted", reason: "OPERATION_INTERRUPTED" } });
    const told = store.current.events.after(0, 100).filter((e) => e.name === "operation-done").map((e) => e.kwargs);
    expect(told).toContainEqual({ operation: left.name, kind: "backup", outcome: "failed", reason: "OPERATION_INTERRUPTED" });
  });

  it("stops the running operations when Steward stops: their work undoes itself and they end as interrupted", async () => {
    const { wait } = gate();
    let undone = false;
    const op = await operations.start(spec(), testContext(), {
      check: () => undefined,
      work: (ctx) => wait(ctx.signal).catch((error: unknown) => {
        undone = true;
        throw error;
      }).then(() => "never"),
      encode: result,
    });
    expect(op.outcome).toBe("running");
    await operations.stop();
    expect(undone).toBe(true);
    expect(store.current.operations.get(op.name)).toMatchObject({ outcome: "failed", error: { kind: "aborted", reason: "OPERATION_INTERRUPTED" } });
    await operations.stop();
  });

  it("tells its progress at most once a second while it runs", async () => {
    const { open, wait } = gate();
    const op = await operations.start(spec(), testContext(), {
      check: () => undefined,
      work: async (ctx, progress) => {
        for (let step = 1; step <= 5; step++) progress(step, 10);
        await new Promise((resolve) => setTimeout(resolve, 1100));
        progress(7, 10);
        await wait(ctx.signal);
        return "x";
      },
      encode: result,
    });
    await new Promise((resolve) => setTimeout(resolve, 1300));
    expect(operations.get(op.name).progress).toEqual({ done: 7, total: 10, unit: "steps" });
    expect(store.current.operations.get(op.name)?.progress.done).toBe(7);
    open();
    await operations.wait(op.name, 5000, new AbortController().signal);
    const told = store.current.events.after(0, 100).filter((e) => e.kwargs.operation === op.name).map((e) => [e.name, e.kwargs.done ?? e.kwargs.outcome]);
    expect(told).toEqual([
      ["operation-progress", "7"],
      ["operation-done", "succeeded"],
    ]);
  });
});

describe("a clone as an operation", () => {
  let copies: ReturnType<typeof gatedCopies>;
  // Before the core's: hooks run in the order they were added.
  beforeEach(() => (copies = gatedCopies()));
  const core = coreForEach(() => new SimHypervisor(), () => [copies.participant]);

  const cloneJob = (newName: string) => ({
    check: () => core.current.cloning.check({ vm: "src", newName, klass: undefined, pool: "", volumePools: {} }),
    work: (ctx: Parameters<typeof core.current.cloning.clone>[1], progress: (done: number, total: number) => void) =>
      core.current.cloning.clone({ vm: "src", newName, klass: undefined, pool: "", volumePools: {} }, ctx, { progress }),
    encode: (vm: { name: string }) => result(vm.name),
  });

  beforeEach(async () => {
    await core.current.creation.create({ name: "src", klass: "StandaloneVM", label: "red", template: "", properties: {}, pool: "", volumePools: {} }, testContext());
  });

  it("leaves nothing half-made when cancelled: the copy's steps are undone and no VM is stored", async () => {
    const op = await core.current.operations.start({ ...spec(), kind: "clone-vm" }, testContext(), cloneJob("copy"));
    expect(op.outcome).toBe("running");
    core.current.operations.cancel(op.name);
    const ended = await core.current.operations.wait(op.name, 5000, new AbortController().signal);
    expect(ended).toMatchObject({ outcome: "cancelled", error: { reason: "CANCELLED" } });
    expect(core.current.lookup.find("copy")).toBeUndefined();
    // The participant's copy stopped at its signal: nothing it made is left for it to undo.
    expect(copies.undone).toEqual([]);
    expect(core.current.vmOperations.busy(core.current.lookup.resolve("src").uuid)).toBe(false);
  });

  it("undoes a finished copy step when the cancel comes before the VM is stored", async () => {
    const op = await core.current.operations.start({ ...spec(), kind: "clone-vm" }, testContext(), {
      ...cloneJob("copy2"),
      work: async (ctx, progress) => {
        const cloning = core.current.cloning.clone({ vm: "src", newName: "copy2", klass: undefined, pool: "", volumePools: {} }, ctx, {
          progress: (done, total) => {
            progress(done, total);
          },
        });
        // The copy finishes, then the cancel comes before the VM is stored.
        await new Promise((resolve) => setTimeout(resolve, 10));
        copies.release("copy2");
        core.current.operations.cancel(core.current.operations.list({ filter: "done=false", pageSize: 1, pageToken: "" }).operations[0].name);
        return cloning;
      },
    });
    const ended = await core.current.operations.wait(op.name, 5000, new AbortController().signal);
    expect(ended.outcome).toBe("cancelled");
    expect(copies.undone).toEqual(["copy2"]);
    expect(core.current.lookup.find("copy2")).toBeUndefined();
  });

  it("ends succeeded with the copy, the bytes of its copies counted", async () => {
    const op = await core.current.operations.start({ ...spec(), kind: "clone-vm" }, testContext(), cloneJob("copy3"));
    copies.release("copy3");
    const ended = await core.current.operations.wait(op.name, 5000, new AbortController().signal);
    expect(ended).toMatchObject({ outcome: "succeeded", progress: { done: GATED_COPY_BYTES, total: GATED_COPY_BYTES }, result: result("copy3") });
    expect(core.current.lookup.find("copy3")).toBeDefined();
  });
});
