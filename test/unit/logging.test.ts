import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { BatchedLines, createLogger, FileSink, flushLogs, isoTimeOncePerMillisecond, type LogSink } from "../../src/logging";

describe("logging", () => {
  it("stamps lines with the ISO time of the current millisecond, as pino's isoTime does", () => {
    const before = Date.now();
    const { time } = JSON.parse(`{${isoTimeOncePerMillisecond().slice(1)}}`) as { time: string };
    const after = Date.now();
    expect(time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Date.parse(time)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(time)).toBeLessThanOrEqual(after);
  });

  it("writes batched lines whole and in order when flushed", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "steward-log-"));
    const file = path.join(dir, "log");
    const fd = fs.openSync(file, "w");
    try {
      const log = createLogger("info", new BatchedLines(new FileSink(fd)));
      for (let i = 0; i < 1000; i++) log.info({ i }, "line");
      await flushLogs(log);
      const lines = fs.readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { i: number; msg: string; time: string });
      expect(lines.map((l) => l.i)).toEqual([...Array(1000).keys()]);
      expect(lines.every((l) => l.msg === "line" && !Number.isNaN(Date.parse(l.time)))).toBe(true);
    } finally {
      fs.closeSync(fd);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("drops and counts the lines that would wait beyond the bound, never holding a call, and tells the count once the reader catches up", async () => {
    /** A sink whose reader takes nothing until told to. */
    class StalledSink implements LogSink {
      written: Buffer[] = [];
      pendingBytes = 0;
      private drained: (() => void)[] = [];
      write(chunk: Buffer): void {
        this.written.push(chunk);
        this.pendingBytes += chunk.length;
      }
      onceDrained(listener: () => void): void {
        if (this.pendingBytes === 0) listener();
        else this.drained.push(listener);
      }
      readerCatchesUp(): void {
        this.pendingBytes = 0;
        for (const listener of this.drained.splice(0)) listener();
      }
    }
    const sink = new StalledSink();
    const log = createLogger("info", new BatchedLines(sink, 64 * 1024));
    const started = Date.now();
    for (let i = 0; i < 5000; i++) log.info({ i }, "line");
    log.flush();
    expect(Date.now() - started).toBeLessThan(2000);
    const kept = sink.written.map((chunk) => chunk.toString()).join("").trim().split("\n");
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(5000);
    sink.readerCatchesUp();
    const told = JSON.parse(sink.written.at(-1)!.toString()) as { dropped: number; msg: string };
    expect(told).toMatchObject({ dropped: 5000 - kept.length, msg: expect.stringContaining("dropped") });
  });
});
