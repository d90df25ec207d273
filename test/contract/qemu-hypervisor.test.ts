/**
 * The hypervisor contract against real QEMU processes: KVM where it can run guests, TCG
 * otherwise (never skipped). Plans that ask for a guest boot the test guest
 * (scripts/build-test-guest), which powers off on the power button and sleeps through its
 * agent; the others boot nothing (the firmware finds no disk), a guest that ignores the button.
 */
import { makeQemuTestHost, qemuInstallation, qemuPlan } from "../fixtures/qemu-guests";
import { hypervisorContract } from "./hypervisor.contract";

// Booting the test guest takes about 6 s under TCG, and a test may boot two.
jest.setTimeout(120_000);

const emulated = !qemuInstallation().kvm;

hypervisorContract("QEMU", async () => {
  const host = makeQemuTestHost();
  return {
    hypervisor: host.driver(),
    restarted: async () => host.driver(),
    plan: (name, { shutdownMs, bootMs, sleeps } = {}) => {
      const guest = shutdownMs !== undefined || bootMs !== undefined || sleeps === true;
      // The launch waits for the guest's agent, which the guest starts once it heeds the power button, after bootMs more.
      return qemuPlan(name, { guest, waitForGuest: guest, kernelopts: bootMs === undefined ? "quiet" : `quiet steward_test.agent_delay_ms=${bootMs}` });
    },
    cleanup: () => host.cleanup(),
    // Under TCG, waking from S3 runs the firmware's resume path on an emulated CPU: seconds.
    eventTimeoutMs: emulated ? 15_000 : 3000,
  };
});
