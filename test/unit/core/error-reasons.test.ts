import * as fs from "node:fs";
import * as path from "node:path";
import { declaredReasons } from "../../../src/core/errors";

const SRC = path.join(__dirname, "../../../src");

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? sourceFiles(full) : entry.name.endsWith(".ts") ? [full] : [];
  });
}

/**
 * The reasons clients branch on are part of the contract: this list changes only with a
 * reviewed change of the snapshot beside this file.
 */
describe("the error reasons", () => {
  const files = sourceFiles(SRC);

  it("are declared in catalogs only, one file per area named *-errors.ts", () => {
    const declaring = files.filter((file) => /\bdeclareReasons\(/.test(fs.readFileSync(file, "utf8")));
    const outside = declaring.map((file) => path.relative(SRC, file)).filter((file) => !file.endsWith("-errors.ts") && file !== "core/errors.ts");
    expect(outside).toEqual([]);
  });

  it("are these, each in one catalog", async () => {
    for (const file of files.filter((f) => f.endsWith("-errors.ts"))) await import(file);
    const reasons = declaredReasons().map(({ reason, catalog }) => `${reason} (${catalog})`);
    expect(reasons).toMatchSnapshot();
  });
});
