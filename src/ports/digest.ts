/**
 * The digest port: SHA-256 of a stream of bytes, for the checksums of imports and exports.
 * Hashing a volume takes about a second a GiB: an adapter may do it beside the caller, which is
 * why adding bytes may make the caller wait, and the result comes later.
 */
export interface Digest {
  /**
   * Adds `bytes`; the caller may reuse them at once. Resolves once the digest can take more:
   * at once, unless much given earlier is still being hashed.
   */
  update(bytes: Uint8Array): Promise<void>;
  /** The digest of everything given, as 64 lowercase hex digits; the digest is done with afterwards. */
  hex(): Promise<string>;
  /** Drops an unfinished digest (an import that failed). Doing so again, or after hex(), does nothing. */
  discard(): void;
}

export interface Digests {
  sha256(): Digest;
}
