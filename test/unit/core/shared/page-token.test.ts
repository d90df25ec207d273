import { randomBytes } from "node:crypto";
import { HmacSigner } from "../../../../src/adapters/crypto/hmac-signer";
import { PageTokens, pageOf } from "../../../../src/core/shared/page-token";

const reason = (work: () => unknown): string | undefined => {
  try {
    work();
  } catch (error) {
    return (error as { reason?: string }).reason;
  }
  return undefined;
};

describe("page tokens", () => {
  const tokens = new PageTokens(new HmacSigner(randomBytes(32)));

  it("come back as where their page starts, for the listing they were made for", () => {
    const token = tokens.encode("work", { klass: "AppVM" });
    expect(tokens.decode(token, { klass: "AppVM" })).toBe("work");
    expect(tokens.decode("", { klass: "AppVM" })).toBe("");
  });

  it("are refused for another listing, from another host, altered, or made up", () => {
    const token = tokens.encode("work", { klass: "AppVM" });
    expect(reason(() => tokens.decode(token, { klass: "TemplateVM" }))).toBe("INVALID_PAGE_TOKEN");
    expect(reason(() => new PageTokens(new HmacSigner(randomBytes(32))).decode(token, { klass: "AppVM" }))).toBe("INVALID_PAGE_TOKEN");
    const [, signature] = token.split(".");
    const forged = `${Buffer.from(JSON.stringify({ after: "zzz", filter: { klass: "AppVM" } })).toString("base64url")}.${signature}`;
    expect(reason(() => tokens.decode(forged, { klass: "AppVM" }))).toBe("INVALID_PAGE_TOKEN");
    // As tokens were before they were signed: text alone.
    expect(reason(() => tokens.decode(Buffer.from(JSON.stringify({ after: "a", filter: {} })).toString("base64url"), {}))).toBe("INVALID_PAGE_TOKEN");
    for (const junk of ["x", "a.b.c", ".", "%%%"]) expect(reason(() => tokens.decode(junk, {}))).toBe("INVALID_PAGE_TOKEN");
  });

  it("page a sorted list: default and maximum sizes, the next token, negative sizes refused", () => {
    const names = Array.from({ length: 1500 }, (_, i) => `n${String(i).padStart(4, "0")}`);
    const first = pageOf(names, (n) => n, { pageSize: 0, pageToken: "" }, tokens, {});
    expect(first.items.length).toBe(100);
    const big = pageOf(names, (n) => n, { pageSize: 5000, pageToken: "" }, tokens, {});
    expect(big.items.length).toBe(1000);
    const rest = pageOf(names, (n) => n, { pageSize: 5000, pageToken: big.nextPageToken }, tokens, {});
    expect([rest.items[0], rest.items.length, rest.nextPageToken]).toEqual(["n1000", 500, ""]);
    expect(reason(() => pageOf(names, (n) => n, { pageSize: -1, pageToken: "" }, tokens, {}))).toBe("INVALID_FIELD");
  });
});
