import type { EventHub } from "../events/event-hub";
import type { VmLookup } from "./vm-lookup";
import { vmNotFound } from "./vm-errors";
import { parseVmRef } from "./vm-names";

/** Which VM an Events stream filtered by VM follows: by uuid, so that a rename does not lose it. */
export class EventSubjects {
  constructor(
    private readonly lookup: VmLookup,
    private readonly hub: EventHub,
  ) {}

  /**
   * The uuid of the VM `text` names (its name, or `uuid:<uuid>`). A stream that resumes
   * (`afterSequence`) follows the VM that had the name where the stream left off, as the
   * retained events tell, though it was renamed since or another VM took the name. A name that
   * no event up to there had is the VM's that has it now; failing that (one renamed or removed
   * since), the VM's that the retained events last knew by it.
   */
  toFollow(text: string, afterSequence: number | undefined): string {
    const ref = parseVmRef(text, "vm");
    if (afterSequence === undefined) return this.lookup.resolve(text).uuid;
    const then = "name" in ref ? this.hub.uuidNamed(ref.name, afterSequence) : undefined;
    const uuid = then ?? this.lookup.find(text)?.uuid ?? ("uuid" in ref ? ref.uuid : this.hub.uuidNamed(ref.name));
    if (uuid === undefined) throw vmNotFound(text);
    return uuid;
  }
}
