import { VmClass } from "../../gen/steward/v1/vm_pb";
import { VmService } from "../../gen/steward/v1/vm_service_pb";
import { EventService } from "../../gen/steward/v1/event_service_pb";
import { createClient } from "../../src/client/steward-client";
import { ChildServer } from "../fixtures/child-server";
import { makeTempDir, removeDir } from "../fixtures/temp-dir";

/**
 * A server killed with SIGKILL in the middle of a stream of changes: after a restart, every
 * change it acknowledged is there, and no change is there only in part.
 */
describe("persistence across SIGKILL", () => {
  let dir: string;
  beforeEach(() => (dir = makeTempDir()));
  afterEach(() => removeDir(dir));

  it("loses no acknowledged change and shows no half-applied one", async () => {
    const args = ["--data-dir", dir, "--listen", "127.0.0.1:0", "--hypervisor", "sim"];
    const first = new ChildServer(args);
    const [tcp] = (await first.listening()) as [string];
    const vms = createClient(VmService, tcp);
    const acknowledged: string[] = [];
    let stop = false;
    // Several writers at once, so the kill lands mid-transaction on some of them.
    const writers = Array.from({ length: 4 }, (_, w) =>
      (async () => {
        for (let i = 0; !stop; i++) {
          const name = `w${w}-vm${i}`;
          try {
            await vms.createVm({ name, klass: VmClass.STANDALONE_VM, label: "red", properties: { memory: { kind: { case: "intValue", value: 512n } } } });
            acknowledged.push(name);
            await vms.addTag({ vm: name, tag: "second-step" });
            acknowledged.push(`${name}#tag`);
          } catch {
            return; // the server is gone
          }
        }
      })(),
    );
    while (acknowledged.length < 200) await new Promise((resolve) => setTimeout(resolve, 5));
    first.signal("SIGKILL");
    await first.exited;
    stop = true;
    await Promise.all(writers);
    vms.close();

    const second = new ChildServer(args);
    const [tcpAgain] = (await second.listening()) as [string];
    const again = createClient(VmService, tcpAgain);
    const present = new Map<string, { tags: string[]; label: string }>();
    let pageToken = "";
    do {
      const page = await again.listVms({ pageSize: 1000, pageToken });
      for (const vm of page.vms) present.set(vm.name, { tags: vm.tags, label: vm.label });
      pageToken = page.nextPageToken;
    } while (pageToken);

    for (const entry of acknowledged) {
      const [name, step] = entry.split("#") as [string, string | undefined];
      expect([entry, present.has(name)]).toEqual([entry, true]);
      if (step === "tag") expect([entry, present.get(name)!.tags.includes("second-step")]).toEqual([entry, true]);
    }
    // Every VM there is whole: its label, its created-by tag, its properties, its event.
    const events = createClient(EventService, tcpAgain);
    const added = new Set<string>();
    // Replay the whole log; a VM without its domain-add would leave this waiting until the deadline.
    for await (const message of events.events({ afterSequence: 0n, namePrefixes: ["domain-add"] }, { timeoutMs: 10_000 })) {
      if (message.kind.case !== "event" || message.kind.value.name === "connection-established") continue;
      added.add(message.kind.value.subject);
      if (added.size === present.size - 1) break;
    }
    for (const [name, vm] of present) {
      if (name === "dom0") continue;
      expect([name, vm.label, vm.tags.includes("created-by-dom0"), added.has(name)]).toEqual([name, "red", true, true]);
      const memory = (await again.getProperty({ vm: name, name: "memory" })).property!;
      expect([name, memory.value!.kind.value]).toEqual([name, 512n]);
    }
    again.close();
    events.close();
    second.signal("SIGTERM");
    expect(await second.exited).toBe(0);
  }, 60_000);
});

