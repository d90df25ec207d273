import * as grpc from "@grpc/grpc-js";
import { EventService } from "../../gen/steward/v1/event_service_pb";
import { ServerReflection } from "../../gen/grpc/reflection/v1/reflection_pb";
import { HostService } from "../../gen/steward/v1/host_service_pb";
import { VmService } from "../../gen/steward/v1/vm_service_pb";
import { createClient } from "../../src/client/steward-client";
import { parseServeConfig } from "../../src/config";
import { declareReasons, DomainError } from "../../src/core/errors";
import { settled, type Interceptor } from "../../src/server/interceptors/interceptor";
import type { CallTarget } from "../../src/server/interceptors/call-target";
import { binding, StewardServer } from "../../src/server/steward-server";
import { notYetImplemented } from "../../src/api/not-implemented";
import { rpcError } from "../fixtures/expect-rpc-error";
import { LogCapture } from "../fixtures/log-capture";

const R = declareReasons("interceptor test", ["CALLER_REFUSED"]);

/** Every handler of a service answers UNIMPLEMENTED: what runs before it is under test. */
function unimplemented(service: typeof VmService | typeof EventService): never {
  return Object.fromEntries(service.methods.map((m) => [m.localName, notYetImplemented])) as never;
}

/**
 * The seam the authorization issue builds on: interceptors the server is given run around every
 * RPC, after Steward's own, and see the call's method, request id, caller and target.
 */
describe("interceptors around every RPC", () => {
  const logs = new LogCapture();
  const seen: { order: string[]; requestId: string; target: CallTarget | undefined; method: string }[] = [];
  let server: StewardServer;

  beforeAll(async () => {
    const record: Interceptor = (next) => async (call) => {
      seen.push({ order: ["record"], requestId: call.context.requestId, target: await call.target(), method: call.method });
      return next(call);
    };
    // Refuses VmService; the outcome it is told of is the one the client gets.
    const refuse: Interceptor = (next) => (call) => {
      seen.at(-1)!.order.push("refuse");
      if (call.method.startsWith("steward.v1.VmService/")) throw new DomainError("permission-denied", R.CALLER_REFUSED, `${call.context.caller} may not call ${call.method}`);
      return settled(next, call);
    };
    const config = parseServeConfig(["--listen", "127.0.0.1:0", "--data-dir", "/nonexistent"], {});
    server = new StewardServer(
      config,
      [binding(VmService, unimplemented(VmService)), binding(EventService, unimplemented(EventService)), binding(HostService, unimplemented(HostService as never))],
      logs.log,
      { interceptors: [record, refuse] },
    );
    await server.listen();
  });
  afterAll(() => server.stop());

  it("run in the order given, after the request id is set, and can refuse a call with a status of their own", async () => {
    const vms = createClient(VmService, server.addresses[0]);
    const refused = await rpcError(vms.getVm({ vm: "work" }, { metadata: { "x-request-id": "seam-1" } }));
    vms.close();
    expect([refused.code, refused.info?.reason]).toEqual([grpc.status.PERMISSION_DENIED, "CALLER_REFUSED"]);
    expect(seen.at(-1)).toEqual({ order: ["record", "refuse"], requestId: "seam-1", target: { vms: ["work"], pools: [], volumes: [] }, method: "steward.v1.VmService/GetVm" });
    // The access log, outermost, logs the refused call like any other.
    expect(await logs.waitFor((line) => line.requestId === "seam-1")).toMatchObject({ method: "steward.v1.VmService/GetVm", code: "PERMISSION_DENIED" });
  });

  it("let a call they pass reach its handler, streams too", async () => {
    const events = createClient(EventService, server.addresses[0]);
    const failed = await rpcError(
      (async () => {
        for await (const _ of events.events({ vm: "work" }, { metadata: { "x-request-id": "seam-2" } })) break;
      })(),
    );
    events.close();
    expect(failed.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(seen.at(-1)).toMatchObject({ order: ["record", "refuse"], requestId: "seam-2", target: { vms: ["work"] } });
  });

  it("leave a streamed request read for its target to the handler, first one included", async () => {
    const reflection = createClient(ServerReflection, server.addresses[0]);
    const answers: string[] = [];
    for await (const response of reflection.serverReflectionInfo([{ messageRequest: { case: "listServices", value: "" } }], { metadata: { "x-request-id": "seam-4" } })) {
      answers.push(response.messageResponse.case!);
    }
    reflection.close();
    expect(answers).toEqual(["listServicesResponse"]);
    expect(seen.at(-1)).toMatchObject({ requestId: "seam-4", target: { vms: [] } });
  });

  it("read the target of a call whose requests stream in from its first request", async () => {
    const vms = createClient(VmService, server.addresses[0]);
    const requests = (async function* () {
      yield { kind: { case: "vm" as const, value: "console-vm" } };
      await new Promise((resolve) => setTimeout(resolve, 50));
    })();
    const refused = await rpcError(
      (async () => {
        for await (const _ of vms.console(requests, { metadata: { "x-request-id": "seam-3" } })) break;
      })(),
    );
    vms.close();
    expect(refused.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(seen.at(-1)).toMatchObject({ requestId: "seam-3", target: { vms: ["console-vm"] }, method: "steward.v1.VmService/Console" });
  });
});
