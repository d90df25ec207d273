/**
 * The NBD server's x509 credentials, as QEMU's tls-creds-x509 reads them from a folder
 * (ca-cert.pem, server-cert.pem, server-key.pem): the named sets of `<data-dir>/nbd-tls`, and
 * Steward's own, which is its gRPC server's certificate and key with the CA its clients'
 * certificates are signed by (--tls-cert, --tls-key, --tls-client-ca), so that a client with a
 * certificate for Steward's API may read exports too.
 */
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import type { NbdCredentials } from "../../../ports/block-exporter";

const FILES = ["ca-cert.pem", "server-cert.pem", "server-key.pem"];
/** Where Steward's own set is put together: a name no request may give (they are letters first). */
const OWN_FOLDER = ".steward";

/** Steward's own TLS files; absent when it serves its API without mTLS. */
export interface OwnTls {
  certFile: string;
  keyFile: string;
  clientCaFile: string;
}

export class FolderNbdCredentials implements NbdCredentials {
  constructor(
    private readonly dir: string,
    private readonly own: OwnTls | undefined,
  ) {}

  async folder(name: string): Promise<string | undefined> {
    if (name === "") return this.ownFolder();
    const folder = path.join(this.dir, name);
    const present = await Promise.all(FILES.map((file) => fsp.access(path.join(folder, file)).then(() => true, () => false)));
    return present.every(Boolean) ? folder : undefined;
  }

  expected(name: string): string {
    if (name === "") return "Steward's own TLS (start it with --tls-cert, --tls-key and --tls-client-ca)";
    return path.join(this.dir, name);
  }

  /** Steward's own set, copied afresh (its files may have been renewed) into a folder of the data folder's. */
  private async ownFolder(): Promise<string | undefined> {
    if (this.own === undefined) return undefined;
    const folder = path.join(this.dir, OWN_FOLDER);
    await fsp.mkdir(folder, { recursive: true, mode: 0o700 });
    const sources = [this.own.clientCaFile, this.own.certFile, this.own.keyFile];
    await Promise.all(FILES.map((file, at) => fsp.copyFile(sources[at], path.join(folder, file))));
    await fsp.chmod(path.join(folder, "server-key.pem"), 0o600);
    return folder;
  }
}
