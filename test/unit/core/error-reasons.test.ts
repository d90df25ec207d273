import * as fs from "node:fs";
import * as path from "node:path";
import { declaredReasons } from "../../../src/core/errors";

const ROOT = path.join(__dirname, "../../..");
const SRC = path.join(ROOT, "src");
const CATALOGUE = path.join(ROOT, "docs/REASONS.md");

function filesUnder(dir: string, ending: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(full, ending) : entry.name.endsWith(ending) ? [full] : [];
  });
}

/** Words in parentheses in proto comments that are no reasons: gRPC codes, QEMU's events, os-release keys. */
const NOT_REASONS = new Set([
  "INVALID_ARGUMENT",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "FAILED_PRECONDITION",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "OUT_OF_RANGE",
  "DEADLINE_EXCEEDED_CODE",
  "DATA_LOSS",
  "BLOCK_EXPORT_DELETED",
  "VERSION_ID",
  "PRETTY_NAME",
]);

/** The reasons the proto comments name, in parentheses after a code, with the services that name them. */
function reasonsTheContractNames(): Map<string, Set<string>> {
  const named = new Map<string, Set<string>>();
  for (const file of filesUnder(path.join(ROOT, "proto/steward/v1"), ".proto")) {
    const text = fs.readFileSync(file, "utf8");
    const comments = text.split("\n").filter((line) => line.trim().startsWith("//")).join("\n");
    for (const group of comments.matchAll(/\(([A-Z][A-Z0-9_]+(?:,\s*(?:\/\/\s*)?[A-Z][A-Z0-9_]+)*)[),]/g)) {
      for (const reason of group[1].split(/,\s*(?:\/\/\s*)?/)) {
        if (!/_/.test(reason) || NOT_REASONS.has(reason)) continue;
        if (!named.has(reason)) named.set(reason, new Set());
        named.get(reason)!.add(path.basename(file, ".proto"));
      }
    }
  }
  return named;
}

/** docs/REASONS.md as the declared catalogues and the contract's comments make it. */
async function catalogue(): Promise<string> {
  for (const file of filesUnder(SRC, "-errors.ts")) await import(file);
  const declared = declaredReasons();
  const named = reasonsTheContractNames();
  const row = (reason: string, area: string) => `| ${reason} | ${area} | ${[...(named.get(reason) ?? [])].sort().join(", ")} |`;
  const told = declared.map(({ reason, catalog }) => row(reason, catalog));
  const later = [...named.keys()].filter((reason) => !declared.some((d) => d.reason === reason)).sort();
  return [
    "# Error reasons",
    "",
    "Every error Steward returns carries a `google.rpc.ErrorInfo` whose `reason` is one of these",
    "(domain `steward.v1`); clients branch on the reason, never on the message. Each RPC's comment",
    "in `proto/steward/v1` says which codes and reasons it returns. This file is generated from",
    "the code's catalogues (`src/**/*-errors.ts`) and the contract's comments by",
    "`test/unit/core/error-reasons.test.ts`, which fails when it is out of date: run",
    "`UPDATE_REASONS=1 npx jest test/unit/core/error-reasons.test.ts` to write it again.",
    "",
    "## What every RPC may return",
    "",
    "Besides the reasons its comment names, any RPC may end with those of the contract and of",
    "the server (areas `contract` and `server` below): a request that cannot be read",
    "(MALFORMED_REQUEST) or is too large (MESSAGE_TOO_LARGE, HEADERS_TOO_LARGE), a server at its",
    "bounds (TOO_MANY_CALLS, PENDING_REQUESTS_TOO_LARGE, TOO_MANY_STREAMS) or stopping",
    "(SERVER_STOPPING), an unknown service or method (SERVICE_UNKNOWN, METHOD_UNKNOWN,",
    "ENCODING_UNSUPPORTED), the caller's deadline or cancellation (DEADLINE_EXCEEDED, CANCELLED),",
    "a broken transport (TRANSPORT_FAILURE), a bad field of no more precise reason",
    "(INVALID_FIELD), an RPC not implemented yet (NOT_IMPLEMENTED), and an unexpected failure",
    "(INTERNAL, whose cause is in the server log under the request id it gives).",
    "",
    "## Told today",
    "",
    "| reason | area | named by |",
    "|---|---|---|",
    ...told,
    "",
    "## Named by the contract, told once their RPCs are implemented",
    "",
    "| reason | area | named by |",
    "|---|---|---|",
    ...later.map((reason) => row(reason, "later")),
    "",
  ].join("\n");
}

/**
 * The reasons clients branch on are part of the contract: the published catalogue changes only
 * with a reviewed change of docs/REASONS.md.
 */
describe("the error reasons", () => {
  const files = filesUnder(SRC, ".ts");

  it("are declared in catalogs only, one file per area named *-errors.ts", () => {
    const declaring = files.filter((file) => /\bdeclareReasons\(/.test(fs.readFileSync(file, "utf8")));
    const outside = declaring.map((file) => path.relative(SRC, file)).filter((file) => !file.endsWith("-errors.ts") && file !== "core/errors.ts");
    expect(outside).toEqual([]);
  });

  it("are published whole in docs/REASONS.md, with those the contract names for later", async () => {
    const expected = await catalogue();
    if (process.env.UPDATE_REASONS === "1") fs.writeFileSync(CATALOGUE, expected);
    expect(fs.readFileSync(CATALOGUE, "utf8")).toBe(expected);
  });

  it("are each named by the comment of an RPC that returns it, but for those every RPC may return", async () => {
    await catalogue();
    const named = reasonsTheContractNames();
    const unnamed = declaredReasons()
      .filter(({ reason, catalog }) => !named.has(reason) && catalog !== "server" && catalog !== "contract")
      .map(({ reason, catalog }) => `${reason} (${catalog})`);
    expect(unnamed).toEqual([]);
    const everyRpc = declaredReasons().filter(({ catalog }) => catalog === "server" || catalog === "contract");
    const header = (await catalogue()).split("## Told today")[0];
    for (const { reason } of everyRpc) expect([reason, header.includes(reason)]).toEqual([reason, true]);
  });
});
