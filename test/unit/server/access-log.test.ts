import pino from "pino";
import { AccessLog, BATCH_MS, MAX_BATCH, type AccessLine } from "../../../src/server/access-log";

const line = (requestId: string): AccessLine => ({ method: "steward.v1.HostService/GetHostInfo", code: "OK", durationMs: 0.2, peer: "127.0.0.1:5000", requestId, caller: "dom0" });

describe("AccessLog", () => {
  let written: { requestId: string; msg: string }[];
  let log: AccessLog;

  beforeEach(() => {
    jest.useFakeTimers();
    written = [];
    log = new AccessLog(pino({ base: undefined }, { write: (text: string) => void written.push(JSON.parse(text)) }));
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

  it("logs a full batch at once, without waiting for its time", () => {
    for (let i = 0; i < MAX_BATCH - 1; i++) log.record(line(String(i)));
    jest.advanceTimersByTime(1);
    expect(written).toHaveLength(0);
    log.record(line("last"));
    jest.advanceTimersByTime(1);
    expect(written).toHaveLength(MAX_BATCH);
    // What comes next is a new batch, on its own time.
    log.record(line("next"));
    jest.advanceTimersByTime(BATCH_MS - 1);
    expect(written).toHaveLength(MAX_BATCH);
    jest.advanceTimersByTime(1);
    expect(written.at(-1)!.requestId).toBe("next");
  });

  it("logs what waits when drained (the server stopping)", () => {
    log.record(line("a"));
    log.drain();
    expect(written.map((l) => l.requestId)).toEqual(["a"]);
    jest.advanceTimersByTime(BATCH_MS);
    expect(written).toHaveLength(1);
  });
});
