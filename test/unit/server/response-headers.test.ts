import * as http2 from "node:http2";
import { httpDate, REQUEST_ID_KEY, ResponseHeaders } from "../../../src/server/response-headers";

describe("response headers", () => {
  it("send x-request-id never indexed, and the date as Node's http2 would", () => {
    const before = Math.floor(Date.now() / 1000) * 1000;
    const headers = new ResponseHeaders("trace-42").toHttp2Headers() as Record<string | symbol, unknown>;
    const after = Date.now();

    expect(headers[REQUEST_ID_KEY]).toBe("trace-42");
    expect(headers[http2.sensitiveHeaders]).toEqual([REQUEST_ID_KEY]);
    expect(headers.date).toMatch(/^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$/);
    expect(Date.parse(headers.date as string)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(headers.date as string)).toBeLessThanOrEqual(after);
  });

  it("hold the request id as metadata too, for whatever reads it as such", () => {
    const headers = new ResponseHeaders("trace-42");
    expect(headers.get(REQUEST_ID_KEY)).toEqual(["trace-42"]);
    expect(headers.clone().get(REQUEST_ID_KEY)).toEqual(["trace-42"]);
    expect(headers.getMap()).toEqual({ [REQUEST_ID_KEY]: "trace-42" });
  });

  it("format the date once per second", () => {
    const noon = Date.UTC(2026, 10, 21, 12, 0, 0);
    const first = httpDate(noon + 10);
    expect(first).toBe("Sat, 21 Nov 2026 12:00:00 GMT");
    expect(httpDate(noon + 990)).toBe(first); // the very same string
    expect(httpDate(noon + 1000)).toBe("Sat, 21 Nov 2026 12:00:01 GMT");
    expect(httpDate(noon + 61_000)).toBe("Sat, 21 Nov 2026 12:01:01 GMT");
  });
});
