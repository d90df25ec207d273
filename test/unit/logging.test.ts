import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { BatchedLines, createLogger, flushLogs, isoTimeOncePerMillisecond } from "../../src/logging";

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
      const log = createLogger("info", new BatchedLines(fd));
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
});
