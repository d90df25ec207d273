import * as grpc from "@grpc/grpc-js";
import { EventService } from "../../gen/steward/v1/event_service_pb";
import type { EventsResponse } from "../../gen/steward/v1/event_service_pb";
import { VmClass } from "../../gen/steward/v1/vm_pb";
import { VmService } from "../../gen/steward/v1/vm_service_pb";
import { createClient, type StewardClient } from "../../src/client/steward-client";
import { rpcError } from "../fixtures/expect-rpc-error";
import { startTestServer, type TestServer } from "../fixtures/test-server";
import { createdVm } from "../fixtures/made-vms";

type Event = Extract<EventsResponse["kind"], { case: "event" }>["value"];

/** Reads a stream in the background, keeping what it has seen. */
class Follower {
  readonly events: Event[] = [];
  heartbeats = 0;
  error: grpc.ServiceError | undefined;
  readonly done: Promise<void>;
  private readonly abort = new AbortController();

  constructor(client: StewardClient<typeof EventService>, request: Parameters<StewardClient<typeof EventService>["events"]>[0]) {
    this.done = (async () => {
      try {
        for await (const message of client.events(request, { signal: this.abort.signal })) {
          if (message.kind.case === "event") this.events.push(message.kind.value);
          else if (message.kind.case === "heartbeat") this.heartbeats++;
        }
      } catch (error) {
        this.error = error as grpc.ServiceError;
      }
    })();
  }

  names(): string[] {
    return this.events.map((e) => e.name);
  }

  async waitFor(check: () => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (this.error) throw this.error;
      if (Date.now() > deadline) throw new Error(`timed out; seen: ${this.names().join(", ")}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  stop(): Promise<void> {
    this.abort.abort();
    return this.done;
  }
}

describe("Events", () => {
  let server: TestServer;
  let events: StewardClient<typeof EventService>;
  let vms: StewardClient<typeof VmService>;
  beforeAll(async () => {
    server = await startTestServer(["--events-heartbeat", "0.2"]);
    events = createClient(EventService, server.tcp);
    vms = createClient(VmService, server.tcp);
  });
  afterAll(async () => {
    events.close();
    vms.close();
    await server.stop();
  });

  it("opens with connection-established, then follows changes in order", async () => {
    await vms.createVm({ name: "before", klass: VmClass.STANDALONE_VM, label: "red" });
    const follower = new Follower(events, {});
    await follower.waitFor(() => follower.events.length === 1);
    const opened = follower.events[0];
    expect(opened).toMatchObject({ name: "connection-established", subject: "" });
    expect(opened.sequence).toBe(4n); // pool-add of the default pool, made at the first start; domain-add, domain-tag-add and operation-done of "before"

    await vms.createVm({ name: "after", klass: VmClass.STANDALONE_VM, label: "red" });
    await vms.addTag({ vm: "after", tag: "x" });
    await follower.waitFor(() => follower.events.length === 5);
    expect(follower.events.slice(1).map((e) => [e.sequence, e.subject, e.name, e.kwargs])).toEqual([
      [5n, "after", "domain-add", { vm: "after" }],
      [6n, "after", "domain-tag-add:created-by-dom0", { tag: "created-by-dom0" }],
      [7n, "after", "operation-done", { operation: expect.stringMatching(/^operations\//), kind: "create-vm", outcome: "succeeded" }],
      [8n, "after", "domain-tag-add:x", { tag: "x" }],
    ]);
    expect(Number(follower.events[1].time!.seconds)).toBeGreaterThan(Date.now() / 1000 - 60);
    await follower.stop();
  });

  it("filters by VM and by event-name prefixes", async () => {
    await vms.createVm({ name: "watched", klass: VmClass.STANDALONE_VM, label: "red" });
    const byVm = new Follower(events, { vm: "watched" });
    const byPrefix = new Follower(events, { namePrefixes: ["domain-feature-", "label-"] });
    await byVm.waitFor(() => byVm.events.length === 1);
    await byPrefix.waitFor(() => byPrefix.events.length === 1);
    await vms.setFeature({ vm: "watched", name: "gui", value: "1" });
    await vms.addTag({ vm: "after", tag: "y" });
    await vms.addTag({ vm: "watched", tag: "z" });
    await byVm.waitFor(() => byVm.events.length === 3);
    await byPrefix.waitFor(() => byPrefix.events.length === 2);
    expect(byVm.names().slice(1)).toEqual(["domain-feature-set:gui", "domain-tag-add:z"]);
    expect(byPrefix.names().slice(1)).toEqual(["domain-feature-set:gui"]);
    await byVm.stop();
    await byPrefix.stop();
    expect((await rpcError(drain(events.events({ vm: "ghost" })))).code).toBe(grpc.status.NOT_FOUND);
  });

  it("replays what a client missed, in order and exactly once, when it resumes", async () => {
    const first = new Follower(events, {});
    await first.waitFor(() => first.events.length === 1);
    await vms.addTag({ vm: "after", tag: "r1" });
    await first.waitFor(() => first.events.length === 2);
    const lastSeen = first.events[1].sequence;
    await first.stop();

    // While it is away:
    await vms.addTag({ vm: "after", tag: "r2" });
    await vms.addTag({ vm: "after", tag: "r3" });

    const resumed = new Follower(events, { afterSequence: lastSeen });
    await resumed.waitFor(() => resumed.events.length === 3);
    await vms.addTag({ vm: "after", tag: "r4" });
    await resumed.waitFor(() => resumed.events.length === 4);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const sequences = resumed.events.slice(1).map((e) => e.sequence);
    expect(resumed.events[0].name).toBe("connection-established");
    expect(resumed.names().slice(1)).toEqual(["domain-tag-add:r2", "domain-tag-add:r3", "domain-tag-add:r4"]);
    expect(sequences).toEqual([lastSeen + 1n, lastSeen + 2n, lastSeen + 3n]);
    await resumed.stop();
  });

  it("carries each VM's uuid, and follows a VM by it across a rename, live and when resuming", async () => {
    const vm = createdVm(await vms.createVm({ name: "named-once", klass: VmClass.STANDALONE_VM, label: "red" }));
    const following = new Follower(events, { vm: "named-once" });
    await following.waitFor(() => following.names().includes("connection-established"));
    const since = following.events[0].sequence;
    await vms.renameVm({ vm: "named-once", newName: "named-twice" });
    await vms.addTag({ vm: "named-twice", tag: "after-rename" });
    await following.waitFor(() => following.names().includes("domain-tag-add:after-rename"));
    await following.stop();
    expect(following.events.slice(1).map((e) => [e.subject, e.subjectUuid, e.name])).toEqual([
      ["named-twice", vm!.uuid, "property-set:name"],
      ["named-twice", vm!.uuid, "domain-tag-add:after-rename"],
    ]);

    // Resuming under the old name (a client that knew no better) follows the same VM: the one
    // that had the name when the stream left off, even once another VM has taken it.
    const newcomer = createdVm(await vms.createVm({ name: "named-once", klass: VmClass.STANDALONE_VM, label: "red" }));
    await vms.addTag({ vm: "named-twice", tag: "after-newcomer" });
    const resumed = new Follower(events, { vm: "named-once", afterSequence: since });
    await resumed.waitFor(() => resumed.names().includes("domain-tag-add:after-newcomer"));
    await resumed.stop();
    expect(resumed.events.filter((e) => e.name !== "connection-established").map((e) => [e.subjectUuid, e.name])).toEqual([
      [vm!.uuid, "property-set:name"],
      [vm!.uuid, "domain-tag-add:after-rename"],
      [vm!.uuid, "domain-tag-add:after-newcomer"],
    ]);
    // Without after_sequence, the name is the newcomer's.
    const live = new Follower(events, { vm: "named-once" });
    await live.waitFor(() => live.names().includes("connection-established"));
    await vms.addTag({ vm: "named-once", tag: "newcomer" });
    await live.waitFor(() => live.names().includes("domain-tag-add:newcomer"));
    await live.stop();
    expect(live.events.slice(1).map((e) => e.subjectUuid)).toEqual([newcomer!.uuid]);
    await vms.removeVm({ vm: "named-once" });

    // And one whose VM was removed since still gets what was retained of it.
    await vms.removeVm({ vm: "named-twice" });
    const gone = new Follower(events, { vm: "named-twice", afterSequence: since });
    await gone.waitFor(() => gone.names().includes("domain-delete"));
    await gone.stop();
    expect(gone.names().slice(1)).toEqual(["property-set:name", "domain-tag-add:after-rename", "domain-tag-add:after-newcomer", "domain-delete"]);
    // Without after_sequence, a name no VM has is still NOT_FOUND.
    expect((await rpcError((async () => { for await (const _ of events.events({ vm: "named-twice" })) break; })())).code).toBe(grpc.status.NOT_FOUND);
  });

  it("sends heartbeats while nothing happens", async () => {
    const follower = new Follower(events, {});
    await follower.waitFor(() => follower.heartbeats >= 2, 3000);
    await follower.stop();
  });

  it("refuses to resume after a sequence it never gave", async () => {
    const error = await rpcError(drain(events.events({ afterSequence: 1_000_000n })));
    expect(error.code).toBe(grpc.status.OUT_OF_RANGE);
    expect(error.info?.reason).toBe("EVENTS_AHEAD");
  });
});

describe("Events, when the log no longer reaches back", () => {
  it("answers OUT_OF_RANGE, so the client relists", async () => {
    const server = await startTestServer(["--events-retained", "5"]);
    const vms = createClient(VmService, server.tcp);
    const events = createClient(EventService, server.tcp);
    for (let i = 0; i < 6; i++) await vms.createVm({ name: `v${i}`, klass: VmClass.STANDALONE_VM, label: "red" });
    const error = await rpcError(drain(events.events({ afterSequence: 1n })));
    expect(error.code).toBe(grpc.status.OUT_OF_RANGE);
    expect(error.info?.reason).toBe("EVENTS_EXPIRED");
    // What is kept can still be resumed from.
    const latest = 19n; // the default pool's pool-add at the first start, then three events for each VM: domain-add, domain-tag-add, operation-done
    const follower = new Follower(events, { afterSequence: latest - 3n });
    await follower.waitFor(() => follower.events.length === 4);
    expect(follower.events.slice(1).map((e) => e.sequence)).toEqual([latest - 2n, latest - 1n, latest]);
    await follower.stop();
    vms.close();
    events.close();
    await server.stop();
  });
});

describe("a slow subscriber", () => {
  it("is cut off with RESOURCE_EXHAUSTED, and never delays the others", async () => {
    const server = await startTestServer(["--events-buffer", "20"]);
    const vms = createClient(VmService, server.tcp);
    const events = createClient(EventService, server.tcp);
    // HTTP/2's smallest window (not the 4 MiB the client asks for): a few events fill it.
    const slowClient = createClient(EventService, server.tcp, undefined, { "grpc-node.flow_control_window": 65535 });
    await vms.createVm({ name: "busy", klass: VmClass.STANDALONE_VM, label: "red" });
    const fast = new Follower(events, { vm: "busy" });
    // A client that stops reading after the first message: flow control backs up to the server.
    const slow = slowClient.events({ vm: "busy" })[Symbol.asyncIterator]();
    await slow.next();
    await fast.waitFor(() => fast.events.length === 1);

    const changes = 1500;
    for (let i = 0; i < changes; i++) await vms.setFeature({ vm: "busy", name: "counter", value: String(i) });
    await fast.waitFor(() => fast.events.length === changes + 1);
    expect(fast.events.at(-1)!.kwargs.value).toBe(String(changes - 1));

    let error: grpc.ServiceError | undefined;
    try {
      for (;;) if ((await slow.next()).done) break;
    } catch (caught) {
      error = caught as grpc.ServiceError;
    }
    expect(error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    await fast.stop();
    for (const client of [vms, events, slowClient]) client.close();
    await server.stop();
  }, 60_000);
});

async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream) {
    // read to the end
  }
}
