/**
 * qemu-img, from Debian's qemu-utils: what the file drivers ask it is a file's map of data and
 * holes (it finds them with SEEK_DATA and SEEK_HOLE on a raw file, and from the cluster tables
 * of a qcow2 image), and what the qcow2 driver asks it besides is to make, convert and check
 * images. Every argument is one argv entry.
 */
import type { Extent, VolumeBitmap } from "../../../ports/storage-driver";
import { runTool } from "./run-tool";

export type ImageFormat = "raw" | "qcow2";

export const QEMU_IMG = "qemu-img";

/** One entry of `qemu-img map --output=json`. */
interface MapEntry {
  start: number;
  length: number;
  data: boolean;
}

/**
 * The runs of data and holes of the image at `file`, maximal, covering [0, sizeBytes). A run
 * qemu-img reports as data is allocated; one it reports as zeroes without data is a hole.
 */
export async function imageExtents(file: string, format: ImageFormat, sizeBytes: number): Promise<Extent[]> {
  if (sizeBytes === 0) return [];
  const { stdout } = await runTool(QEMU_IMG, ["map", "--output=json", "-f", format, file]);
  return tiledExtents(JSON.parse(stdout) as MapEntry[], sizeBytes);
}

/** Merges neighbours of one kind, clips to `sizeBytes`, and fills what qemu-img left out as a hole. */
export function tiledExtents(entries: readonly MapEntry[], sizeBytes: number): Extent[] {
  const extents: Extent[] = [];
  const add = (offset: number, length: number, allocated: boolean) => {
    if (length <= 0) return;
    const last = extents.at(-1);
    if (last && last.allocated === allocated && last.offset + last.length === offset) last.length += length;
    else extents.push({ offset, length, allocated });
  };
  let end = 0;
  for (const entry of [...entries].sort((a, b) => a.start - b.start)) {
    const start = Math.max(entry.start, end);
    const stop = Math.min(entry.start + entry.length, sizeBytes);
    if (stop <= start) continue;
    add(end, start - end, false);
    add(start, stop - start, entry.data);
    end = stop;
  }
  add(end, sizeBytes - end, false);
  return extents;
}

/** The persistent dirty bitmaps of a qcow2 image, as `qemu-img info` tells them (-U: a QEMU may hold the image). */
export async function imageBitmaps(file: string): Promise<VolumeBitmap[]> {
  const { stdout } = await runTool(QEMU_IMG, ["info", "--output=json", "-U", "-f", "qcow2", file]);
  const info = JSON.parse(stdout) as { "format-specific"?: { data?: { bitmaps?: { name: string; granularity: number; flags: string[] }[] } } };
  return (info["format-specific"]?.data?.bitmaps ?? []).map((bitmap) => ({
    name: bitmap.name,
    granularityBytes: bitmap.granularity,
    recording: bitmap.flags.includes("auto"),
    inconsistent: bitmap.flags.includes("in-use"),
  }));
}
