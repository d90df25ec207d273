import { createHmac } from "node:crypto";
import type { Signer } from "../../ports/signer";

/** HMAC-SHA256 with a secret key (the host's). */
export class HmacSigner implements Signer {
  constructor(private readonly key: Uint8Array) {}

  sign(payload: Uint8Array): Uint8Array {
    return createHmac("sha256", this.key).update(payload).digest();
  }
}
