import { PageBuffers } from "../../../../src/api/encoding/vm-page-encoding";

describe("PageBuffers", () => {
  it("never hands out a buffer that is taken, and hands out again one given back", () => {
    const buffers = new PageBuffers();
    const first = buffers.take(700_000);
    const second = buffers.take(700_000);
    expect(second).not.toBe(first);
    expect(first.length).toBeGreaterThanOrEqual(700_000);
    buffers.give(first);
    expect(buffers.take(600_000)).toBe(first);
    expect(buffers.take(600_000)).not.toBe(first);
  });

  it("gives a larger buffer when none given back is large enough", () => {
    const buffers = new PageBuffers();
    const small = buffers.take(10);
    buffers.give(small);
    const large = buffers.take(small.length + 1);
    expect(large).not.toBe(small);
    expect(large.length).toBeGreaterThan(small.length);
    expect(buffers.take(5)).toBe(small);
  });

  it("keeps only a few buffers, the largest, and hands out the smallest that is large enough", () => {
    const buffers = new PageBuffers();
    const taken = [1, 2, 3].map((mb) => buffers.take(mb * 1024 * 1024));
    for (const buffer of taken) buffers.give(buffer);
    expect(buffers.take(1)).toBe(taken[1]);
    expect(buffers.take(1)).toBe(taken[2]);
    expect(buffers.take(1)).not.toBe(taken[0]);
  });
});
