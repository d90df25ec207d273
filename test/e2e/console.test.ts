import * as grpc from "@grpc/grpc-js";
import { VmClass } from "../../gen/steward/v1/vm_pb";
import { ConsoleClient } from "../fixtures/console-client";
import { serverForSuite } from "../fixtures/server-with-clients";

describe("Console, on the simulated hypervisor (whose console echoes what is typed)", () => {
  const suite = serverForSuite();
  beforeAll(async () => {
    await suite.vms.createVm({ name: "work", klass: VmClass.STANDALONE_VM, label: "red" });
    await suite.vms.startVm({ vm: "work" });
  });

  it("shows a session that joins late what the console printed at boot, then what follows", async () => {
    const session = new ConsoleClient(suite.vms, "work");
    await session.waitFor(/work booted in the simulation/);
    session.type("echo hello\r");
    await session.waitFor(/echo hello\r/);
    expect(session.output.indexOf("booted")).toBeLessThan(session.output.indexOf("echo hello"));
    session.cancel();
    expect((await session.ended)?.code).toBe(grpc.status.CANCELLED);
  });

  it("lets several sessions read, and one type at a time: another is refused, naming the one that types, until it ends", async () => {
    const reader = new ConsoleClient(suite.vms, "work");
    const writer = await typingOnceFree(() => new ConsoleClient(suite.vms, "work"), "from the writer\r");
    await reader.waitFor(/from the writer/);

    const second = new ConsoleClient(suite.vms, "work");
    second.type("from another\r");
    const refused = await second.ended;
    expect(refused?.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(refused?.details).toMatch(/dom0 types into the console of work/);
    expect(reader.output).not.toContain("from another");

    writer.cancel();
    await writer.ended;
    // The server hears of the cancel a moment after the client: the console is free once it has.
    const next = await typingOnceFree(() => new ConsoleClient(suite.vms, "work"), "now mine\r");
    await reader.waitFor(/now mine/);
    next.cancel();
    reader.cancel();
    await Promise.all([next.ended, reader.ended]);
  });

  /** A session that typed `text`, trying again while the console is still another's. */
  async function typingOnceFree(open: () => ConsoleClient, text: string): Promise<ConsoleClient> {
    for (let attempt = 0; ; attempt++) {
      const session = open();
      session.type(text);
      const refused = await Promise.race([session.ended, new Promise<"typing">((resolve) => setTimeout(() => resolve("typing"), 200))]);
      if (refused === "typing") return session;
      if (attempt > 20 || !refused?.details.includes("types into the console")) throw new Error(`the console stayed busy: ${refused?.details}`);
    }
  }

  it("ends the stream OK when the VM halts", async () => {
    const session = new ConsoleClient(suite.vms, "work");
    await session.waitFor(/booted/);
    await suite.vms.killVm({ vm: "work" });
    expect(await session.ended).toBeUndefined();
    await suite.vms.startVm({ vm: "work" });
  });

  it("refuses a first request that is not the VM, a VM that is not running, and input before the VM", async () => {
    await suite.vms.createVm({ name: "halted", klass: VmClass.STANDALONE_VM, label: "red" });
    const halted = await new ConsoleClient(suite.vms, "halted").ended;
    expect(halted?.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(halted?.details).toMatch(/halted.*Halted|Halted/);

    const inputFirst = await new ConsoleClient(suite.vms, "work", { kind: { case: "input", value: Buffer.from("x") } }).ended;
    expect(inputFirst?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(inputFirst?.details).toMatch(/^vm: /);

    const unknown = await new ConsoleClient(suite.vms, "nosuchvm").ended;
    expect(unknown?.code).toBe(grpc.status.NOT_FOUND);

    const vmTwice = new ConsoleClient(suite.vms, "work");
    vmTwice.send({ kind: { case: "vm", value: "work" } });
    const error = await vmTwice.ended;
    expect(error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error?.details).toMatch(/^input: /);
  });
});
