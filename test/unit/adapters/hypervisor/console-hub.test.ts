import { ConsoleHub } from "../../../../src/adapters/hypervisor/shared/console-hub";
import { DomainError } from "../../../../src/core/errors";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (chunks: Uint8Array[]) => chunks.map((chunk) => new TextDecoder().decode(chunk)).join("");

/** Reads a stream's output until it ends, or until `count` chunks came. */
async function read(output: AsyncIterable<Uint8Array>, count = Infinity): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of output) {
    chunks.push(chunk);
    if (chunks.length >= count) break;
  }
  return chunks;
}

describe("ConsoleHub", () => {
  it("gives a reader who comes late the recent output, then what follows, and ends every reader when the console ends", async () => {
    const hub = new ConsoleHub(async () => undefined);
    hub.received(bytes("boot line 1\n"));
    hub.received(bytes("boot line 2\n"));
    const first = await hub.open(new AbortController().signal);
    const second = await hub.open(new AbortController().signal);
    hub.received(bytes("login: "));
    hub.end();
    expect(text(await read(first.output))).toBe("boot line 1\nboot line 2\nlogin: ");
    expect(text(await read(second.output))).toBe("boot line 1\nboot line 2\nlogin: ");
    // After the end, a new reader still gets what was kept, and its output ends.
    expect(text(await read((await hub.open(new AbortController().signal)).output))).toBe("boot line 1\nboot line 2\nlogin: ");
  });

  it("keeps only the latest bytes up to its ring's size", async () => {
    const hub = new ConsoleHub(async () => undefined, { ringBytes: 10, readerBacklogBytes: 1000 });
    hub.received(bytes("0123456789"));
    hub.received(bytes("abcdef"));
    hub.end();
    expect(text(await read((await hub.open(new AbortController().signal)).output))).toBe("6789abcdef");
  });

  it("copies what it keeps, so that a driver may reuse its read buffer", async () => {
    const hub = new ConsoleHub(async () => undefined);
    const buffer = bytes("first");
    hub.received(buffer);
    buffer.set(bytes("XXXXX"));
    hub.end();
    expect(text(await read((await hub.open(new AbortController().signal)).output))).toBe("first");
  });

  it("cuts off a reader who falls too far behind, and no one else: the guest's output is never held up", async () => {
    const hub = new ConsoleHub(async () => undefined, { ringBytes: 16, readerBacklogBytes: 64 });
    const slow = await hub.open(new AbortController().signal);
    const keepingUp = await hub.open(new AbortController().signal);
    const kept: Uint8Array[] = [];
    const following = (async () => {
      for await (const chunk of keepingUp.output) kept.push(chunk);
    })();
    for (let line = 0; line < 20; line++) {
      hub.received(bytes(`line ${String(line).padStart(2, "0")}\n`));
      await new Promise((resolve) => setImmediate(resolve));
    }
    hub.end();
    await following;
    expect(text(kept)).toContain("line 19\n");
    const error = await read(slow.output).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DomainError);
    expect(error).toMatchObject({ kind: "resource-exhausted", reason: "CONSOLE_READER_TOO_SLOW" });
  });

  it("ends a reader's output when its signal aborts or it is closed, and refuses its writes after", async () => {
    const typed: string[] = [];
    const hub = new ConsoleHub(async (input) => void typed.push(new TextDecoder().decode(input)));
    const abort = new AbortController();
    const aborted = await hub.open(abort.signal);
    const closed = await hub.open(new AbortController().signal);
    await closed.write(bytes("ls\r"));
    expect(typed).toEqual(["ls\r"]);
    abort.abort();
    closed.close();
    await expect(read(aborted.output)).resolves.toEqual([]);
    await expect(read(closed.output)).resolves.toEqual([]);
    await expect(closed.write(bytes("x"))).rejects.toThrow(/closed/);
    // A reader who left is not fed: the hub holds nothing for it.
    hub.received(bytes("more"));
  });
});
