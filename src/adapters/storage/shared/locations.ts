import { promises as fs } from "node:fs";
import path from "node:path";
import { isErrno } from "./pool-folder";

/**
 * `location` with its symlinks resolved as far as it exists, the rest appended: two paths that
 * name one folder through a symlink resolve the same, so neither can hide inside the other.
 */
export async function resolvedPath(location: string): Promise<string> {
  const missing: string[] = [];
  let existing = path.resolve(location);
  for (;;) {
    try {
      return path.join(await fs.realpath(existing), ...missing.reverse());
    } catch (error) {
      if (!isErrno(error, "ENOENT", "ENOTDIR")) throw error;
      const parent = path.dirname(existing);
      if (parent === existing) return path.resolve(location);
      missing.push(path.basename(existing));
      existing = parent;
    }
  }
}

/** Whether `inner` is `outer` or lies inside it; both resolved. */
export function within(inner: string, outer: string): boolean {
  const relative = path.relative(outer, inner);
  return relative === "" || (relative !== ".." && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative));
}
