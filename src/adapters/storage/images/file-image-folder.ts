import { constants, promises as fs } from "node:fs";
import path from "node:path";
import { isValidImageName, type ImageFile, type ImageFolder } from "../../../ports/image-folder";
import { imageNotFound, invalidImageName } from "../../../ports/storage-errors";

/**
 * The images folder on disk. An image is opened without following a symbolic link (one could
 * lead out of the folder), and only when it is a regular file; it is then read through that one
 * descriptor, so a file renamed over it meanwhile is not read half and half.
 */
export class FileImageFolder implements ImageFolder {
  constructor(private readonly root: string) {}

  /** Makes the folder when it is not there yet (0750: images may hold what the guests hold). */
  async make(): Promise<void> {
    await fs.mkdir(this.root, { recursive: true, mode: 0o750 });
  }

  async open(file: string, field: string): Promise<ImageFile> {
    if (!isValidImageName(file)) throw invalidImageName(field, file);
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(path.join(this.root, file), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // Not there, or nothing Steward can read as an image (a socket, a file it may not read).
      if (code === "ENOENT" || code === "ENXIO" || code === "EACCES" || code === "EPERM" || code === "ENOTDIR") throw imageNotFound(file);
      if (code === "ELOOP") throw invalidImageName(field, file, "it is a symbolic link in the images folder, which could lead out of it");
      throw error;
    }
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) throw imageNotFound(file);
      return openImage(handle, stats.size);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }
}

function openImage(handle: fs.FileHandle, sizeBytes: number): ImageFile {
  return {
    sizeBytes,
    async head(length) {
      const buffer = new Uint8Array(Math.min(length, sizeBytes));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
      return buffer.subarray(0, bytesRead);
    },
    async *chunks(chunkBytes) {
      for (let offset = 0; offset < sizeBytes; ) {
        // A fresh buffer each time: the consumer may still hold the last one.
        const buffer = new Uint8Array(Math.min(chunkBytes, sizeBytes - offset));
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset);
        // Shorter than it was when opened: what is read ends there, and the import finds it short.
        if (bytesRead === 0) return;
        offset += bytesRead;
        yield buffer.subarray(0, bytesRead);
      }
    },
    close: () => handle.close(),
  };
}
