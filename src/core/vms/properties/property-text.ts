import type { PropertyValue } from "./property-schema";

/** A value as event kwargs carry it, in Qubes' way: True/False, "" for none. */
export function eventText(value: PropertyValue | undefined): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "boolean") return value ? "True" : "False";
  return String(value);
}
