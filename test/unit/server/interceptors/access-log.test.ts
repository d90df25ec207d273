import pino from "pino";
import { AccessLog, BATCH_MS, MAX_BATCH, SLICE, type AccessLine } from "../../../../src/server/interceptors/access-log";

const line = (requestId: string): AccessLine => ({ method: "steward.v1.HostService/GetHostInfo", code: "OK", durationMs: 0.2, peer: "127.0.0.1:5000", requestId, caller: "dom0" });

describe("AccessLog", () => {
  let written: { requestId: string; msg: string }[];
  let log: AccessLog;

  beforeEach(() => {
    jest.useFakeTimers();
    written = [];
    log = new AccessLog(pino({ base: undefined }, { write: (text: string) => void written.push(JSON.parse(text) as (typeof written)[number]) }));
  });
  afterEach(() => jest.useRealTimers());

  it("logs the lines of a batch together, BATCH_MS after the first, in order", () => {
    log.record(line("a"));
    jest.advanceTimersByTime(BATCH_MS / 2);
    log.record(line("b"));
    expect(written).toEqual([]);
    jest.advanceTimersByTime(BATCH_MS / 2);
    expect(written.map((l) => [l.requestId, l.msg])).toEqual([["a", "rpc"], ["b", "rpc"]]);
    log.record(line("c"));
    jest.advanceTimersByTime(BATCH_MS);
    expect(written.map((l) => l.requestId)).toEqual(["a", "b", "c"]);
  });

  it("starts logging a full batch at once, without waiting for its time", () => {
    for (let i = 0; i < MAX_BATCH - 1; i++) log.record(line(String(i)));
    jest.advanceTimersByTime(1);
    expect(written).toHaveLength(0);
    log.record(line("last"));
    jest.advanceTimersToNextTimer();
    expect(written).toHaveLength(SLICE);
    while (written.length < MAX_BATCH) jest.advanceTimersToNextTimer();
    expect(written.map((l) => l.requestId)).toEqual([...Array.from({ length: MAX_BATCH - 1 }, (_, i) => String(i)), "last"]);
    // What comes next is a new batch, on its own time.
    log.record(line("next"));
    jest.advanceTimersByTime(BATCH_MS - 1);
    expect(written).toHaveLength(MAX_BATCH);
    jest.advanceTimersByTime(1);
    expect(written.at(-1)!.requestId).toBe("next");
  });

  it("logs a batch a slice at a time, and lines that come meanwhile after it, in order", () => {
    const first = Array.from({ length: 3 * SLICE }, (_, i) => `a${i}`);
    for (const id of first) log.record(line(id));
    jest.advanceTimersByTime(BATCH_MS - 1);
    jest.advanceTimersToNextTimer(); // the batch's time
    expect(written).toHaveLength(SLICE);
    log.record(line("b0"));
    jest.advanceTimersToNextTimer(); // the next slice, other work having run before it
    expect(written).toHaveLength(2 * SLICE);
    jest.advanceTimersByTime(BATCH_MS);
    expect(written.map((l) => l.requestId)).toEqual([...first, "b0"]);
  });

  it("logs what waits when drained (the server stopping), once and in order, even amid a batch", () => {
    const first = Array.from({ length: 2 * SLICE }, (_, i) => `a${i}`);
    for (const id of first) log.record(line(id));
    jest.advanceTimersByTime(BATCH_MS - 1);
    jest.advanceTimersToNextTimer();
    expect(written).toHaveLength(SLICE);
    log.record(line("b0"));
    log.drain();
    expect(written.map((l) => l.requestId)).toEqual([...first, "b0"]);
    jest.advanceTimersByTime(BATCH_MS);
    expect(written).toHaveLength(first.length + 1);
  });
});
