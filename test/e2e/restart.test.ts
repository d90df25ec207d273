import * as path from "node:path";
import { EventService } from "../../gen/steward/v1/event_service_pb";
import { PowerState, VmClass } from "../../gen/steward/v1/vm_pb";
import { VmService } from "../../gen/steward/v1/vm_service_pb";
import { StewardApp } from "../../src/app/app";
import { createClient } from "../../src/client/steward-client";
import { parseServeConfig } from "../../src/config";
import { rpcError } from "../fixtures/expect-rpc-error";
import { bool } from "../fixtures/property-values";
import { LogCapture } from "../fixtures/log-capture";
import { makeTempDir, removeDir } from "../fixtures/temp-dir";

/**
 * A Steward that starts again tells the truth: what ran and does not any more has halted, with its
 * event, and what was to be removed when it halted is gone, so a client that resumes its Events
 * stream finds the log agreeing with the state.
 */
describe("a restart", () => {
  let dir: string;
  beforeEach(() => (dir = makeTempDir()));
  afterEach(() => removeDir(dir));

  const start = async () => {
    // The simulation's guests live in the process: a new server finds none running, as after a reboot.
    const config = parseServeConfig(["--data-dir", dir, "--listen", `unix:${path.join(dir, "s.sock")}`, "--hypervisor", "sim"], {});
    const app = await StewardApp.start(config, new LogCapture().log);
    return { app, address: app.server.addresses[0] };
  };

  it("tells of the VMs that ended while no Steward ran, and removes the DispVMs among them", async () => {
    const first = await start();
    const vms = createClient(VmService, first.address);
    await vms.createVm({ name: "tpl", klass: VmClass.TEMPLATE_VM, label: "black" });
    await vms.createVm({ name: "dvm", klass: VmClass.APP_VM, label: "red", template: "tpl", properties: { template_for_dispvms: bool(true) } });
    await vms.createVm({ name: "work", klass: VmClass.STANDALONE_VM, label: "red" });
    const { vm: disp } = await vms.createDisposableVm({ template: "dvm" });
    await vms.startVm({ vm: "work" });
    await vms.startVm({ vm: disp!.name });
    const events = createClient(EventService, first.address);
    let before = 0n;
    for await (const response of events.events({})) {
      if (response.kind.case === "event") before = response.kind.value.sequence;
      break;
    }
    events.close();
    vms.close();
    await first.app.stop();

    const second = await start();
    const again = createClient(VmService, second.address);
    expect((await again.getVm({ vm: "work" })).vm!.state).toBe(PowerState.HALTED);
    expect((await rpcError(again.getVm({ vm: disp!.name }))).info?.reason).toBe("VM_NOT_FOUND");
    again.close();
    const resumed = createClient(EventService, second.address);
    const told: string[] = [];
    for await (const response of resumed.events({ afterSequence: before })) {
      if (response.kind.case !== "event") break;
      if (response.kind.value.name === "connection-established") continue;
      // The halts settle the VMs' volumes too (volume-snapshot): the domain events are what this is about.
      if (response.kind.value.name.startsWith("volume-")) continue;
      told.push(`${response.kind.value.subject} ${response.kind.value.name}`);
      if (told.length === 3) break;
    }
    resumed.close();
    await second.app.stop();
    expect(told.sort()).toEqual([`${disp!.name} domain-delete`, `${disp!.name} domain-shutdown`, "work domain-shutdown"].sort());
  });
});
