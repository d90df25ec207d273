import { createHash } from "node:crypto";
import type { Digest, Digests } from "../../ports/digest";

/** SHA-256 from Node's OpenSSL. */
export const nodeDigests: Digests = {
  sha256(): Digest {
    const hash = createHash("sha256");
    return {
      update: (bytes) => void hash.update(bytes),
      hex: () => hash.digest("hex"),
    };
  },
};
