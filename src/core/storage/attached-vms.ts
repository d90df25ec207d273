import type { Store } from "../../ports/store";

/** The names of the VMs `volume` is attached to (by qid where a VM is gone meanwhile). */
export function attachedVmNames(store: Store, volume: { pool: string; vid: string }, except?: number): string[] {
  return store.attachments
    .ofVolume(volume.pool, volume.vid)
    .filter((attachment) => attachment.vmQid !== except)
    .map((attachment) => store.vms.byQid(attachment.vmQid)?.name ?? String(attachment.vmQid));
}
