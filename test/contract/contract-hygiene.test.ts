/**
 * AIP hygiene across the contract (proto/steward/v1), read from the proto files themselves: their
 * comments are the contract's documentation, which the generated descriptors do not keep.
 */
import * as fs from "node:fs";
import * as path from "node:path";

const PROTO = path.resolve(__dirname, "../../proto/steward/v1");

interface Rpc {
  file: string;
  service: string;
  name: string;
  input: string;
  output: string;
  comment: string;
  options: string;
}

interface Message {
  name: string;
  body: string;
}

const texts = fs
  .readdirSync(PROTO)
  .filter((f) => f.endsWith(".proto"))
  .map((f) => ({ file: f, text: fs.readFileSync(path.join(PROTO, f), "utf8") }));
/** google.longrunning's messages, which OperationService takes and gives. */
const LONGRUNNING = fs.readFileSync(path.resolve(PROTO, "../../google/longrunning/operations.proto"), "utf8");

function rpcs(): Rpc[] {
  const found: Rpc[] = [];
  for (const { file, text } of texts) {
    const lines = text.split("\n");
    let service = "";
    lines.forEach((line, i) => {
      const opened = /^service (\w+)/.exec(line);
      if (opened) service = opened[1];
      const rpc = /^\s+rpc (\w+)\((?:stream )?([\w.]+)\) returns \((?:stream )?([\w.]+)\)/.exec(line);
      if (!rpc) return;
      const comment: string[] = [];
      for (let j = i - 1; j >= 0 && lines[j].trim().startsWith("//"); j--) comment.unshift(lines[j].trim().replace(/^\/\/ ?/, ""));
      const options: string[] = [];
      if (line.trim().endsWith("{")) for (let j = i + 1; j < lines.length && !/^\s+}\s*$/.test(lines[j]); j++) options.push(lines[j]);
      found.push({ file, service, name: rpc[1], input: rpc[2], output: rpc[3], comment: comment.join(" "), options: options.join("\n") });
    });
  }
  return found;
}

function messages(): Map<string, Message> {
  const found = new Map<string, Message>();
  for (const text of [...texts.map((t) => t.text), LONGRUNNING]) {
    for (const match of text.matchAll(/^message (\w+) \{\n([\s\S]*?)^\}/gm)) found.set(match[1], { name: match[1], body: match[2] });
  }
  return found;
}

const RPCS = rpcs();
const MESSAGES = messages();

/** Lists of a fixed, small set: what the host or the contract has, which no client makes grow. */
const FIXED_LISTS = new Set(["ListVmClasses", "ListDeviceClasses", "ListPoolDrivers", "ListGlobalProperties"]);

describe("the contract", () => {
  it("has been read: every service's RPCs", () => {
    expect(RPCS.length).toBeGreaterThan(100);
    expect(new Set(RPCS.map((rpc) => rpc.service)).size).toBe(10);
  });

  it("says of every RPC whether it is idempotent: an idempotency_level, or its comment says", () => {
    const silent = RPCS.filter(
      (rpc) => !/idempotency_level = (IDEMPOTENT|NO_SIDE_EFFECTS)/.test(rpc.options) && !/Idempotent|idempotent|Retry-safe with request_id|Not idempotent/.test(rpc.comment),
    ).map((rpc) => `${rpc.service}/${rpc.name}`);
    expect(silent).toEqual([]);
  });

  it("documents the status codes each RPC returns, beyond OK, in its comment", () => {
    const CODES = /INVALID_ARGUMENT|NOT_FOUND|ALREADY_EXISTS|FAILED_PRECONDITION|PERMISSION_DENIED|RESOURCE_EXHAUSTED|OUT_OF_RANGE|ABORTED|UNAVAILABLE|DATA_LOSS|CANCELLED|UNIMPLEMENTED/;
    // Those with no errors of their own say so, and point at the errors every RPC may return.
    const silent = RPCS.filter((rpc) => !CODES.test(rpc.comment) && !rpc.comment.includes("fails only as every RPC may (docs/REASONS.md)")).map((rpc) => `${rpc.service}/${rpc.name}`);
    expect(silent).toEqual([]);
  });

  it("takes a request_id on every creating mutation", () => {
    // AddTag adds to a set, and is idempotent as it is.
    const creating = RPCS.filter((rpc) => /^(Create|Insert|Clone|Snapshot|Execute|Restore|Assign|StartNbdServer|AddPool|AddBlockExport)/.test(rpc.name));
    expect(creating.length).toBeGreaterThan(12);
    const without = creating.filter((rpc) => !/\bstring request_id = \d+;/.test(MESSAGES.get(rpc.input)?.body ?? "")).map((rpc) => `${rpc.service}/${rpc.name}`);
    expect(without).toEqual([]);
  });

  it("pages every list that can grow, with page_size, page_token and next_page_token", () => {
    const lists = RPCS.filter((rpc) => /^List/.test(rpc.name) || rpc.name === "GetFirewall").filter((rpc) => !FIXED_LISTS.has(rpc.name));
    const unpaged = lists
      .filter((rpc) => {
        const input = MESSAGES.get(rpc.input.replace(/^google\.longrunning\./, ""))?.body ?? "";
        const output = MESSAGES.get(rpc.output.replace(/^google\.longrunning\./, ""))?.body ?? "";
        return !/int32 page_size = /.test(input) || !/string page_token = /.test(input) || !/string next_page_token = /.test(output);
      })
      .map((rpc) => `${rpc.service}/${rpc.name}`);
    expect(lists.length).toBeGreaterThan(10);
    expect(unpaged).toEqual([]);
  });

  it("marks output-only and required fields in one way: a last sentence 'Output only.' or 'Required.'", () => {
    const loose = texts.flatMap(({ file, text }) =>
      text
        .split("\n")
        .map((line, i) => [line, i] as const)
        .filter(([line]) => /^\s*\/\//.test(line) && /(output only|required)\b/i.test(line))
        .filter(([line]) => !/(Output only(, all of it)?[.:]|Required\.|Required: one of them\.|Required when|Required;)/.test(line))
        .filter(([line]) => !/_REQUIRED\b|have required$|required options|needs it|required for new_template/.test(line))
        .map(([line, i]) => `${file}:${i + 1}: ${line.trim()}`),
    );
    expect(loose).toEqual([]);
  });

  it("returns a google.longrunning.Operation, with its operation_info, from long work", () => {
    const long = RPCS.filter((rpc) => ["CreateVm", "CloneVm", "CloneVolume", "ExecuteBackup", "RestoreBackup"].includes(rpc.name));
    expect(long.map((rpc) => [rpc.name, rpc.output, /response_type: "steward\.v1\.\w+Response"/.test(rpc.options), /metadata_type: "steward\.v1\.OperationMetadata"/.test(rpc.options)])).toEqual(
      long.map((rpc) => [rpc.name, "google.longrunning.Operation", true, true]),
    );
  });
});
