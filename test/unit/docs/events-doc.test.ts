import * as fs from "node:fs";
import * as path from "node:path";

const ROOT = path.resolve(__dirname, "../../..");

/** Every `.ts` file under a folder. */
function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? sources(full) : entry.name.endsWith(".ts") ? [full] : [];
  });
}

/** The event names docs/EVENTS.md lists: the first cell of its table rows, `:<x>` kept as `:`. */
function documented(): Set<string> {
  const text = fs.readFileSync(path.join(ROOT, "docs/EVENTS.md"), "utf8");
  const names = [...text.matchAll(/^\| ([a-z][a-z-]*(?::`<[a-z]+>`)?) \|/gm)].map((match) => match[1].replace(/`<[a-z]+>`$/, ""));
  return new Set(names);
}

/** The event names the code's event constructors tell: `"name"` and `` `name:${…}` `` literals. */
function told(): Set<string> {
  const names = new Set<string>();
  for (const file of sources(path.join(ROOT, "src/core")).filter((f) => f.endsWith("-events.ts"))) {
    const text = fs.readFileSync(file, "utf8");
    for (const match of text.matchAll(/(?:told|about)\([^,]+, [`"]([a-z][a-z-]*:?)(?:\$\{|[`"])/g)) names.add(match[1]);
  }
  return names;
}

describe("docs/EVENTS.md", () => {
  it("lists every event the code tells", () => {
    const listed = documented();
    const missing = [...told()].filter((name) => !listed.has(name));
    expect(told().size).toBeGreaterThanOrEqual(20);
    expect(missing).toEqual([]);
  });

  it("names the events of the areas to come, with their kwargs: pool-*, volume-*, block-export-*, operation-*", () => {
    const listed = [...documented()];
    for (const prefix of ["pool-", "volume-", "block-export-", "operation-"]) expect(listed.filter((name) => name.startsWith(prefix)).length).toBeGreaterThan(1);
  });
});
