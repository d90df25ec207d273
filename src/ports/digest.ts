/** The digest port: SHA-256 of a stream of bytes, for the checksums of imports and exports. */
export interface Digest {
  update(bytes: Uint8Array): void;
  /** The digest of everything given, as 64 lowercase hex digits; the digest is done with afterwards. */
  hex(): string;
}

export interface Digests {
  sha256(): Digest;
}
