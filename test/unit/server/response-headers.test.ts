import * as http2 from "node:http2";
import { REQUEST_ID_KEY, ResponseHeaders } from "../../../src/server/response-headers";

describe("response headers", () => {
  it("send x-request-id never indexed, and keep Node from adding a date", () => {
    const headers = new ResponseHeaders("trace-42").toHttp2Headers() as Record<string | symbol, unknown>;

    expect(headers[REQUEST_ID_KEY]).toBe("trace-42");
    expect(headers[http2.sensitiveHeaders]).toEqual([REQUEST_ID_KEY]);
    expect(headers.date).toEqual([]);
  });

  it("hold the request id as metadata too, for whatever reads it as such", () => {
    const headers = new ResponseHeaders("trace-42");
    expect(headers.get(REQUEST_ID_KEY)).toEqual(["trace-42"]);
    expect(headers.clone().get(REQUEST_ID_KEY)).toEqual(["trace-42"]);
    expect(headers.getMap()).toEqual({ [REQUEST_ID_KEY]: "trace-42" });
  });
});
