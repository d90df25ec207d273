
/**
 * Steward's images folder (`<data-dir>/images`): disk images a host's administrator puts there,
 * from which CreateVm makes a new VM's volumes. A request names an image by its file name alone.
 */
export interface ImageFolder {
  /**
   * Opens the image of that file name, read-only: NOT_FOUND (IMAGE_NOT_FOUND) when there is no
   * regular file of that name; INVALID_ARGUMENT (INVALID_IMAGE_NAME) for a name isValidImageName
   * refuses, or a symbolic link (it could lead out of the folder).
   */
  open(file: string, field: string): Promise<ImageFile>;
}

/** An open image file: its length and bytes, as they were when it was opened. */
export interface ImageFile {
  readonly sizeBytes: number;
  /** Up to `length` bytes from its start (fewer when it is shorter). */
  head(length: number): Promise<Uint8Array>;
  /** Its bytes from the start, in chunks of at most `chunkBytes`, one read at a time (the consumer pulls). */
  chunks(chunkBytes: number): AsyncIterable<Uint8Array>;
  close(): Promise<void>;
}

/** An image's file name: letters, digits, "_", "+", "-" and ".", not starting with "."; no "/", so never a path. */
const IMAGE_NAME = /^[A-Za-z0-9_+-][A-Za-z0-9_.+-]{0,254}$/;

export function isValidImageName(file: string): boolean {
  return IMAGE_NAME.test(file);
}
