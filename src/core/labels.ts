import type { Clock } from "../ports/clock";
import type { LabelRecord, Store } from "../ports/store";
import { alreadyExists, failedPrecondition, InvalidFieldError, notFound } from "./errors";

export type Label = LabelRecord;

const LABEL_NAME = /^[a-z][a-z0-9_-]*$/;
const MAX_LABEL_NAME = 31;
const COLOR = /^(?:0x|#)([0-9a-fA-F]{6})$/;

/** The label colour as Qubes writes it: 0xRRGGBB. */
export function formatColor(color: number): string {
  return `0x${color.toString(16).padStart(6, "0")}`;
}

/** Labels: the eight built in (red … black, indexes 1 to 8) and custom ones. */
export class Labels {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  list(): Label[] {
    return this.store.labels.list();
  }

  get(name: string, field = "name"): Label {
    if (name === "") throw new InvalidFieldError(field, "a label name is required");
    const label = this.store.labels.get(name);
    if (!label) throw notFound("LABEL_NOT_FOUND", `no label named ${name}`, { label: name });
    return label;
  }

  create(name: string, colorText: string): Label {
    if (!LABEL_NAME.test(name) || name.length > MAX_LABEL_NAME) {
      throw new InvalidFieldError("name", `label names are a lowercase letter, then lowercase letters, digits, '_' or '-', at most ${MAX_LABEL_NAME}`, "INVALID_LABEL_NAME");
    }
    const color = COLOR.exec(colorText);
    if (!color) throw new InvalidFieldError("color", "expected a colour as 0xRRGGBB or #RRGGBB", "INVALID_COLOR");
    return this.store.transaction(() => {
      if (this.store.labels.get(name)) throw alreadyExists("LABEL_EXISTS", `a label named ${name} exists`, { label: name });
      const label = { name, color: Number.parseInt(color[1]!, 16), index: this.store.labels.nextIndex(), builtin: false };
      this.store.labels.insert(label);
      this.store.events.append({ subject: "", name: "label-add", kwargs: { label: name, color: formatColor(label.color), index: String(label.index) } }, this.clock.now());
      return label;
    });
  }

  remove(name: string): void {
    this.store.transaction(() => {
      const label = this.get(name);
      if (label.builtin) throw failedPrecondition("LABEL_BUILTIN", `${name} is a built-in label and cannot be removed`, { label: name });
      const users = this.store.vms.withLabel(name);
      if (users.length > 0) {
        throw failedPrecondition("LABEL_IN_USE", `label ${name} is used by ${users.join(", ")}`, { label: name, vms: users.join(",") });
      }
      this.store.labels.remove(name);
      this.store.events.append({ subject: "", name: "label-delete", kwargs: { label: name } }, this.clock.now());
    });
  }
}
