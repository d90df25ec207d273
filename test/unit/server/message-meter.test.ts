import { MessageMeter } from "../../../src/server/call-gate";

/** A gRPC frame: flag, 4-byte length, message. */
function frame(length: number): Buffer {
  const bytes = Buffer.alloc(5 + length, 7);
  bytes.writeUInt8(0, 0);
  bytes.writeUInt32BE(length, 1);
  return bytes;
}

describe("MessageMeter", () => {
  it("holds the bytes of the message under way, its prefix included, and of whole ones until released", () => {
    const meter = new MessageMeter();
    const whole = frame(100);
    meter.take(whole.subarray(0, 3));
    expect([meter.pending, meter.held]).toEqual([3, 3]);
    meter.take(whole.subarray(3, 50));
    expect([meter.pending, meter.held]).toEqual([50, 50]);
    meter.take(whole.subarray(50));
    expect([meter.pending, meter.held]).toEqual([0, 105]);
    meter.take(frame(10));
    expect(meter.held).toBe(120);
    // Released oldest first.
    meter.release();
    expect(meter.held).toBe(15);
    meter.release();
    meter.release();
    expect(meter.held).toBe(0);
  });

  it("follows messages merged in one chunk and split anywhere, empty ones included", () => {
    const stream = Buffer.concat([frame(10), frame(0), frame(300), frame(20)]);
    // Cut one byte short of the end: three messages are whole, the last under way less a byte.
    for (const size of [1, 2, 5, 7, 64, stream.length]) {
      const meter = new MessageMeter();
      for (let at = 0; at < stream.length - 1; at += size) meter.take(stream.subarray(at, Math.min(at + size, stream.length - 1)));
      expect([size, meter.pending, meter.held]).toEqual([size, 5 + 20 - 1, stream.length - 1]);
      for (const left of [stream.length - 1 - 15, stream.length - 1 - 20, 24]) {
        meter.release();
        expect([size, meter.held]).toEqual([size, left]);
      }
    }
  });

  it("counts a compressed message as what it may inflate to, since grpc-js inflates it whole", () => {
    const meter = new MessageMeter(4096);
    const compressed = frame(30);
    compressed.writeUInt8(1, 0);
    meter.take(compressed.subarray(0, 20));
    expect(meter.held).toBe(20);
    meter.take(compressed.subarray(20));
    expect(meter.held).toBe(4096);
    meter.take(frame(30));
    expect(meter.held).toBe(4096 + 35);
  });
});
