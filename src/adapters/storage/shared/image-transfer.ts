/**
 * A volume's content as a whole image file of another format, both ways: an export as a qcow2
 * image, and an import of one a client sent. An imported image is a file nobody here made, so it
 * is read for what it leads to before any tool opens it: a backing file, an external data file
 * or encryption would make QEMU open another file or want a key, and any is refused; then
 * `qemu-img check` says whether its tables hold together. Only then is it converted into the
 * pool's own format, which drops what else it carried (snapshots, bitmaps).
 */
import type { VolumeReader, VolumeWriter } from "../../../ports/storage-driver";
import { invalidImage } from "../../../ports/storage-errors";
import { removeFile, type PoolFolder } from "./pool-folder";
import { readQcow2Header } from "./qcow2-header";
import { QEMU_IMG, type ImageFormat } from "./qemu-img";
import { RawFileReader, RawFileWriter } from "./raw-file-io";
import { runTool, ToolError } from "./run-tool";

/**
 * How long qemu-img may check an image a client sent: it reads the image's tables, not its data,
 * so an honest image of any size takes seconds; one built to keep it busy is refused after this.
 */
const CHECK_TIMEOUT_MS = 5 * 60_000;

/** qemu-img check's exit code for leaked clusters: space wasted, nothing wrong with the data (the conversion drops them). */
const CHECK_LEAKS_ONLY = 3;

/** Checks the qcow2 image a client sent, at `file`; returns its virtual size. INVALID_ARGUMENT (IMAGE_INVALID) when the pool must not take it. */
export async function checkedImage(vid: string, file: string): Promise<number> {
  let header;
  try {
    header = await readQcow2Header(file);
  } catch {
    throw invalidImage(vid, "it is not a qcow2 image");
  }
  if (header.backing !== undefined) throw invalidImage(vid, `it has a backing file (${JSON.stringify(header.backing)}): send a standalone image (qemu-img convert -O qcow2)`);
  if (header.externalData) throw invalidImage(vid, "its data are in an external data file: send a standalone image");
  if (header.encrypted) throw invalidImage(vid, "it is encrypted: send it decrypted");
  try {
    await runTool(QEMU_IMG, ["check", "-q", "-f", "qcow2", file], { timeoutMs: CHECK_TIMEOUT_MS });
  } catch (error) {
    if (error instanceof ToolError && error.code === "SIGKILL") throw invalidImage(vid, `qemu-img check did not end within ${CHECK_TIMEOUT_MS / 60_000} minutes`);
    if (!(error instanceof ToolError) || error.code !== CHECK_LEAKS_ONLY) {
      const said = error instanceof ToolError ? error.stderr.trim().split("\n")[0] : String(error);
      throw invalidImage(vid, `qemu-img check finds it damaged: ${said || "no message"}`);
    }
  }
  return header.sizeBytes;
}

/**
 * A writer of the `imageBytes` bytes of a qcow2 image file for `vid`, into a temporary of the
 * pool: at finish the image is checked, `accept` is told its virtual size (it may refuse it by
 * throwing), and `adopt` makes its content the volume's. An abort, or any refusal, removes it.
 */
export function openImageWriter(vid: string, pool: PoolFolder, imageBytes: number, accept: (sizeBytes: number) => void | Promise<void>, adopt: (image: string) => Promise<void>): Promise<VolumeWriter> {
  return RawFileWriter.open(vid, pool, imageBytes, async (image) => {
    await accept(await checkedImage(vid, image));
    await adopt(image);
  });
}

/**
 * A reader of `source` (a file of `sourceFormat`) as a standalone qcow2 image: converted into a
 * temporary of the pool, which the reader keeps open by its descriptor and nobody can find by
 * name, so that closing it (or a crash) leaves nothing behind.
 */
export async function openImageReader(vid: string, pool: PoolFolder, source: string, sourceFormat: ImageFormat): Promise<VolumeReader> {
  const image = pool.temporary(".qcow2");
  try {
    await runTool(QEMU_IMG, ["convert", "-q", "-f", sourceFormat, "-O", "qcow2", source, image]);
    return await RawFileReader.open(vid, image);
  } finally {
    await removeFile(image);
  }
}
