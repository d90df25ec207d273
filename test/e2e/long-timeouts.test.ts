import * as grpc from "@grpc/grpc-js";
import * as http2 from "node:http2";
import { EventService } from "../../gen/steward/v1/event_service_pb";
import { PowerState, VmClass } from "../../gen/steward/v1/vm_pb";
import { createClient } from "../../src/client/steward-client";
import { errorDetails } from "../../src/client/status-details";
import { rpcError } from "../fixtures/expect-rpc-error";
import { serverForSuite } from "../fixtures/server-with-clients";

const DAY_MS = 86_400_000;

/** Timeouts past what a JavaScript timer holds wait that long; none fires at once. */
describe("timeouts of any size", () => {
  const suite = serverForSuite();

  it("ShutdownVm with a 30-day timeout waits for the halt, not for nothing", async () => {
    const { vms } = suite;
    await vms.createVm({ name: "patient", klass: VmClass.STANDALONE_VM, label: "red" });
    await vms.setFeature({ vm: "patient", name: "sim-shutdown-ms", value: "100" });
    await vms.startVm({ vm: "patient" });
    const { state } = await vms.shutdownVm({ vm: "patient", wait: true, timeout: { seconds: BigInt((30 * DAY_MS) / 1000), nanos: 0 } });
    expect(state).toBe(PowerState.HALTED);
    const beyond = await rpcError(vms.shutdownVm({ vm: "patient", wait: true, timeout: { seconds: 10n ** 12n, nanos: 0 } }));
    expect([beyond.code, beyond.info?.reason, beyond.info?.metadata.field]).toEqual([grpc.status.INVALID_ARGUMENT, "INVALID_FIELD", "timeout"]);
  });

  it("a call with a 25-day deadline runs on, rather than end at once", async () => {
    const events = createClient(EventService, suite.server.tcp);
    const received: string[] = [];
    const stop = new AbortController();
    const stream = events.events({}, { timeoutMs: 25 * DAY_MS, signal: stop.signal });
    const reading = (async () => {
      for await (const response of stream) if (response.kind.case === "event") received.push(response.kind.value.name);
    })().catch((error: grpc.ServiceError) => received.push(`error ${error.code}`));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(received).toEqual(["connection-established"]);
    stop.abort();
    await reading;
    events.close();
  });

  it("a grpc-timeout header that is not a timeout is INVALID_ARGUMENT, with ErrorInfo, not INTERNAL", async () => {
    const session = http2.connect(`http://${suite.server.tcp}`);
    try {
      const trailers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        const request = session.request({
          ":method": "POST",
          ":path": "/steward.v1.HostService/GetHostInfo",
          "content-type": "application/grpc",
          te: "trailers",
          "grpc-timeout": "soon",
        });
        let headers: http2.IncomingHttpHeaders = {};
        request.on("response", (h) => (headers = h));
        request.on("trailers", (t) => resolve({ ...headers, ...t }));
        request.on("error", reject);
        request.on("end", () => resolve(headers));
        request.resume();
        request.end(Buffer.from([0, 0, 0, 0, 0]));
      });
      expect(Number(trailers["grpc-status"])).toBe(grpc.status.INVALID_ARGUMENT);
      const metadata = new grpc.Metadata();
      metadata.set("grpc-status-details-bin", Buffer.from(trailers["grpc-status-details-bin"] as string, "base64"));
      const details = errorDetails({ code: grpc.status.INVALID_ARGUMENT, details: "", metadata } as grpc.ServiceError);
      expect(details).toMatchObject({ reason: "INVALID_FIELD", metadata: { field: "grpc-timeout" } });
    } finally {
      session.close();
    }
  });
});
