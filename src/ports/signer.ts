/**
 * The signer port: a keyed MAC over what Steward hands out to be given back (page tokens), so
 * that no client can make one up. Its key is the host's secret; the core never sees it.
 */
export interface Signer {
  /** The MAC of `payload`: the same bytes for the same payload, and for no other. */
  sign(payload: Uint8Array): Uint8Array;
}
