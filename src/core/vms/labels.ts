import type { RequestLedger } from "../shared/request-ledger";
import type { Store } from "../../ports/store";
import type { EventLog } from "../events/event-log";
import type { LabelRecord } from "../model/label";
import type { CallContext } from "../shared/call-context";
import { invalidColor, invalidLabelName, labelBuiltin, labelExists, labelInUse, labelNameRequired, labelNotFound, tooManyLabels, requestResultGone } from "./vm-errors";
import { labelAdd, labelDelete } from "./vm-events";

export type Label = LabelRecord;

const LABEL_NAME = /^[a-z][a-z0-9_-]*$/;
const MAX_LABEL_NAME = 31;
/** The most labels the host has, the built-in ones included: ListLabels answers them in one message. */
export const MAX_LABELS = 256;
const COLOR = /^(?:0x|#)([0-9a-fA-F]{6})$/;

/** The label colour as Qubes writes it: 0xRRGGBB. */
export function formatColor(color: number): string {
  return `0x${color.toString(16).padStart(6, "0")}`;
}

/** Labels: the eight built in (red … black, indexes 1 to 8) and custom ones. */
export class Labels {
  constructor(
    private readonly store: Store,
    private readonly events: EventLog,
    private readonly ledger: RequestLedger,
  ) {}

  list(): Label[] {
    return this.store.labels.list();
  }

  get(name: string, field = "name"): Label {
    if (name === "") throw labelNameRequired(field);
    const label = this.store.labels.get(name);
    if (!label) throw labelNotFound(name);
    return label;
  }

  /**
   * Makes a custom label. With a request_id (`requestId`), a retry of the same request returns
   * the label the first one made, as long as it exists (else FAILED_PRECONDITION,
   * REQUEST_RESULT_GONE).
   */
  create(name: string, colorText: string, _ctx: CallContext, requestId = ""): Label {
    this.ledger.checkKey(requestId);
    if (!LABEL_NAME.test(name) || name.length > MAX_LABEL_NAME) throw invalidLabelName(MAX_LABEL_NAME);
    const color = COLOR.exec(colorText);
    if (!color) throw invalidColor();
    const asked = { name, color: colorText };
    return this.store.transaction(() => {
      const earlier = this.ledger.earlier(requestId, "CreateLabel", asked);
      if (earlier !== undefined) {
        const made = this.store.labels.get(earlier);
        if (!made) throw requestResultGone(requestId, "label");
        return made;
      }
      if (this.store.labels.get(name)) throw labelExists(name);
      if (this.store.labels.list().length >= MAX_LABELS) throw tooManyLabels(MAX_LABELS);
      const label = { name, color: Number.parseInt(color[1], 16), index: this.store.labels.nextIndex(), builtin: false };
      this.store.labels.insert(label);
      this.events.append(labelAdd(label, formatColor(label.color)));
      this.ledger.remember(requestId, "CreateLabel", asked, name);
      return label;
    });
  }

  remove(name: string, _ctx: CallContext): void {
    this.store.transaction(() => {
      const label = this.get(name);
      if (label.builtin) throw labelBuiltin(name);
      const users = this.store.vms.withLabel(name);
      if (users.length > 0) throw labelInUse(name, users);
      this.store.labels.remove(name);
      this.events.append(labelDelete(name));
    });
  }
}
