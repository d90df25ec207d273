import type { EventHub } from "../events/event-hub";
import { DomainError } from "../errors";
import type { VmLookup } from "./vm-lookup";
import { vmNotFound } from "./vm-errors";
import { parseVmRef } from "./vm-names";

/** Which VM an Events stream filtered by VM follows: by uuid, so that a rename does not lose it. */
export class EventSubjects {
  private readonly notFoundReason = vmNotFound("x").reason;

  constructor(
    private readonly lookup: VmLookup,
    private readonly hub: EventHub,
  ) {}

  /**
   * The uuid of the VM `text` names (its name, or `uuid:<uuid>`). A stream that resumes
   * (`afterSequence`) may name a VM that was renamed or removed since: it follows the VM that the
   * retained events last knew by that name (or that uuid), and gets what was retained.
   */
  toFollow(text: string, afterSequence: number | undefined): string {
    try {
      return this.lookup.resolve(text).uuid;
    } catch (error) {
      if (afterSequence === undefined || !(error instanceof DomainError) || error.reason !== this.notFoundReason) throw error;
      const ref = parseVmRef(text, "vm");
      const uuid = "uuid" in ref ? ref.uuid : this.hub.uuidNamed(ref.name);
      if (uuid === undefined) throw error;
      return uuid;
    }
  }
}
