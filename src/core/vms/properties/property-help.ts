import { maxLengthOf, type DefaultSpec, type PropertySpec, type WriteRule } from "./property-schema";

const WRITE_TEXT: Readonly<Record<WriteRule, string>> = {
  anytime: "at any time",
  halted: "while the VM is halted",
  creation: "only when the VM is made",
  "read-only": "never: it is read-only",
};

/**
 * A property's long help in reStructuredText, as Qubes' property.HelpRst answers: its one
 * paragraph of help under its name, then a field list of what the schema says of it (type,
 * default, when it may be set, accepted values and limits). Made from the schema, so it never
 * disagrees with what the server does.
 */
export function helpRst(spec: PropertySpec): string {
  const fields: [string, string][] = [["type", spec.type]];
  fields.push(["default", defaultText(spec.default)]);
  fields.push(["set", WRITE_TEXT[spec.write]]);
  if (spec.classes) fields.push(["classes", spec.classes.join(", ")]);
  if (spec.choices) fields.push(["values", spec.choices.map(literal).join(", ")]);
  if (spec.min !== undefined || spec.max !== undefined) fields.push(["range", `${spec.min ?? "any"} to ${spec.max ?? "any"}`]);
  if (spec.type === "str") fields.push(["length", `at most ${maxLengthOf(spec)} characters`]);
  if (spec.pattern) fields.push(["format", spec.pattern.description]);
  const title = spec.name;
  return [title, "=".repeat(title.length), "", spec.help, "", ...fields.map(([name, text]) => `:${name}: ${text}`), ""].join("\n");
}

function defaultText(spec: DefaultSpec): string {
  switch (spec.kind) {
    case "none":
      return "none";
    case "constant":
      return spec.value === null ? "none" : literal(String(spec.value));
    case "template":
      return `the template's, else ${defaultText(spec.otherwise)}`;
    case "global":
      return `the global property ${literal(spec.property)}`;
    case "computed":
      return "computed by the server";
    case "byClass":
      return `for ${spec.classes.join(", ")}: ${defaultText(spec.then)}; otherwise ${defaultText(spec.otherwise)}`;
  }
}

function literal(text: string): string {
  return text === "" ? "empty" : `\`\`${text}\`\``;
}
