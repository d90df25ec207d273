/**
 * QEMU's monitors (QMP, and the guest agent behind its channel) speak JSON objects, one per
 * line. This cuts a byte stream into those objects: it keeps at most one unfinished line, and
 * refuses a line longer than its bound rather than buffering without end.
 */
const NEWLINE = 0x0a;

export class JsonLineTooLongError extends Error {
  constructor(limit: number) {
    super(`a monitor line grew past ${limit} bytes without ending`);
  }
}

export class JsonLineSplitter {
  /** The bytes of the line not ended yet, in the chunks they came in. */
  private partial: Buffer[] = [];
  private partialBytes = 0;

  constructor(private readonly maxLineBytes: number) {}

  /**
   * The values of the lines `chunk` ends, in order; blank lines are skipped. A line that is not
   * JSON comes back as a SyntaxError in its place, so that one bad line does not hide the
   * others. Throws JsonLineTooLongError when the unfinished line grows past the bound.
   */
  push(chunk: Buffer): unknown[] {
    const values: unknown[] = [];
    let start = 0;
    for (let end = chunk.indexOf(NEWLINE); end >= 0; end = chunk.indexOf(NEWLINE, start)) {
      const line = this.takeLine(chunk.subarray(start, end));
      start = end + 1;
      const value = parseLine(line);
      if (value !== undefined) values.push(value);
    }
    if (start < chunk.length) this.keep(chunk.subarray(start));
    return values;
  }

  /** The line so far, ended by `tail`; the line's bytes are decoded whole, so a UTF-8 character split across chunks comes out right. */
  private takeLine(tail: Buffer): Buffer {
    this.guard(this.partialBytes + tail.length);
    if (this.partial.length === 0) return tail;
    const line = Buffer.concat([...this.partial, tail]);
    this.partial = [];
    this.partialBytes = 0;
    return line;
  }

  private keep(rest: Buffer): void {
    this.guard(this.partialBytes + rest.length);
    // A copy: the chunk's buffer may be reused by whoever read it.
    this.partial.push(Buffer.from(rest));
    this.partialBytes += rest.length;
  }

  private guard(bytes: number): void {
    if (bytes > this.maxLineBytes) throw new JsonLineTooLongError(this.maxLineBytes);
  }
}

/** The guest agent's resynchronisation mark, which comes before its reply to guest-sync-delimited; never a byte of UTF-8 text. */
const SYNC_MARK = 0xff;

function parseLine(line: Buffer): unknown {
  const text = (line.includes(SYNC_MARK) ? Buffer.from(line.filter((byte) => byte !== SYNC_MARK)) : line).toString("utf8").trim();
  if (text === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    return error instanceof SyntaxError ? error : new SyntaxError(String(error));
  }
}
