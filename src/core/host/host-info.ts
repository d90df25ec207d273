import type { Clock } from "../../ports/clock";
import type { Store } from "../../ports/store";
import type { BlockExportKind } from "../model/block-export";
import type { HypervisorInfo } from "../model/host";
import type { CallContext } from "../shared/call-context";

export const API_VERSION = "v1";

export interface HostInfo {
  version: string;
  apiVersion: string;
  hostname: string;
  hostId: string;
  hypervisor: HypervisorInfo;
  startTime: Date;
  capabilities: string[];
  /** The block export types the host can serve. */
  blockExportTypes: readonly BlockExportKind[];
  caller: string;
}

export interface HostFacts {
  version: string;
  hostname: string;
}

/** Describes the host. Everything but the caller is fixed at start, so a call costs nothing. */
export class HostInfoReader {
  private readonly fixed: Omit<HostInfo, "caller">;

  constructor(store: Store, hypervisorInfo: HypervisorInfo, clock: Clock, facts: HostFacts, blockExportTypes: readonly BlockExportKind[] = []) {
    this.fixed = {
      version: facts.version,
      apiVersion: API_VERSION,
      hostname: facts.hostname,
      hostId: store.host().hostId,
      hypervisor: hypervisorInfo,
      startTime: clock.now(),
      capabilities: [...hypervisorInfo.capabilities, ...blockExportTypes.map((type) => `${type}-export`)],
      blockExportTypes: [...blockExportTypes],
    };
  }

  describe(ctx: CallContext): HostInfo {
    return { ...this.fixed, caller: ctx.caller };
  }
}
