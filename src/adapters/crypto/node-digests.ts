import { createHash } from "node:crypto";
import type { Digest, Digests } from "../../ports/digest";

/**
 * SHA-256 from Node's OpenSSL, on the caller's thread. (Hashing in a worker thread was measured:
 * an import of 1 GiB was no faster within the noise, and the server held twice the memory for
 * the copies in flight.)
 */
export const nodeDigests: Digests = {
  sha256(): Digest {
    const hash = createHash("sha256");
    return {
      update: async (bytes) => void hash.update(bytes),
      hex: async () => hash.digest("hex"),
      discard: () => undefined,
    };
  },
};
