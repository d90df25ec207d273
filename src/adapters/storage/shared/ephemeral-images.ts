/**
 * Ephemeral images: a volume's content replaced by an empty image encrypted with a random key
 * (LUKS: qemu's own LUKS format for raw pools, qcow2's LUKS encryption for qcow2 pools). The key
 * reaches qemu-img through a file of the pool's temporary folder, mode 0600, removed as soon as
 * the image is made, never through its arguments, which anyone on the host can read in /proc.
 * PBKDF iterations are cut short: the key is 32 random bytes, not a passphrase to stretch. (QEMU
 * still times PBKDF2 for a second or two before it makes a key slot, whatever it is asked:
 * an ephemeral volume costs its VM's start that much.)
 */
import { randomBytes } from "node:crypto";
import { constants, promises as fs } from "node:fs";
import type { EphemeralImage } from "../../../ports/storage-driver";
import { removeFile, type PoolFolder } from "./pool-folder";
import { QEMU_IMG } from "./qemu-img";
import { runTool, ToolError } from "./run-tool";

const KEY_BYTES = 32;
const PBKDF_TIMING_TRIES = 5;
/** Between tries: a moment for the host to be less busy. */
const PBKDF_RETRY_MS = 200;
/** LUKS1's magic, "LUKS\xba\xbe", and where its header says the payload starts (in 512-byte sectors). */
const LUKS_MAGIC = Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]);
const LUKS_PAYLOAD_OFFSET = 104;

/**
 * Makes at `image` an empty encrypted image of `sizeBytes` in `format`, with a new key; returns
 * it. `image` is a temporary the caller renames into the volume's place.
 */
export async function makeEncryptedImage(pool: PoolFolder, image: string, format: EphemeralImage["format"], sizeBytes: number): Promise<EphemeralImage> {
  const key = randomBytes(KEY_BYTES).toString("base64");
  const keyFile = pool.temporary(".key");
  try {
    await fs.writeFile(keyFile, key, { flag: "wx", mode: 0o600 });
    // The passphrase is the base64 text itself: LUKS takes text, and 32 random bytes rarely are.
    const secret = `secret,id=key0,file=${keyFile}`;
    const options = format === "luks" ? "key-secret=key0,iter-time=10" : "encrypt.format=luks,encrypt.key-secret=key0,encrypt.iter-time=10";
    for (let attempt = 1; ; attempt++) {
      try {
        await runTool(QEMU_IMG, ["create", "-q", "--object", secret, "-f", format, "-o", options, image, String(sizeBytes)]);
        return { format, key };
      } catch (error) {
        // QEMU times PBKDF2 before it writes a key slot, and gives up when the
        // host is too busy to measure it: a passing condition, worth another try or two.
        if (attempt >= PBKDF_TIMING_TRIES || !(error instanceof ToolError) || !/accurate CPU usage/.test(error.stderr)) throw error;
        await removeFile(image);
        await new Promise((resolve) => setTimeout(resolve, PBKDF_RETRY_MS * attempt));
      }
    }
  } finally {
    await removeFile(keyFile);
  }
}

/**
 * The bytes before a LUKS image's payload, when the file at `file` is one (an ephemeral volume
 * of a raw pool while its VM runs); 0 for a plain raw file.
 */
export async function luksHeaderBytes(file: string): Promise<number> {
  const handle = await fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const header = Buffer.alloc(LUKS_PAYLOAD_OFFSET + 4);
    const { bytesRead } = await handle.read(header, 0, header.length, 0);
    if (bytesRead < header.length || !header.subarray(0, LUKS_MAGIC.length).equals(LUKS_MAGIC)) return 0;
    return header.readUInt32BE(LUKS_PAYLOAD_OFFSET) * 512;
  } finally {
    await handle.close();
  }
}
