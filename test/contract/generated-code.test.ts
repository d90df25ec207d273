import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { makeTempDir, removeDir } from "../fixtures/temp-dir";

const ROOT = path.resolve(__dirname, "../..");

function listFiles(dir: string, base = dir): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? listFiles(full, base) : [path.relative(base, full)];
  });
}

describe("gen/", () => {
  it("is exactly what `buf generate` makes from proto/", () => {
    const out = makeTempDir();
    try {
      execFileSync(path.join(ROOT, "node_modules/.bin/buf"), ["generate", "--output", out], {
        cwd: ROOT,
        env: { ...process.env, PATH: `${path.join(ROOT, "node_modules/.bin")}:${process.env.PATH}` },
      });
      const committed = path.join(ROOT, "gen");
      const fresh = path.join(out, "gen");
      expect(listFiles(committed).sort()).toEqual(listFiles(fresh).sort());
      for (const file of listFiles(fresh)) {
        const same = fs.readFileSync(path.join(committed, file)).equals(fs.readFileSync(path.join(fresh, file)));
        if (!same) throw new Error(`gen/${file} differs from what buf generate makes: run npm run generate and commit`);
      }
    } finally {
      removeDir(out);
    }
  });
});
