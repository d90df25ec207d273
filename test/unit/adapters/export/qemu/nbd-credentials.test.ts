import * as fs from "node:fs";
import * as path from "node:path";
import { FolderNbdCredentials } from "../../../../../src/adapters/export/qemu/nbd-credentials";
import { makeTempDir, removeDir } from "../../../../fixtures/temp-dir";

describe("the NBD server's credentials", () => {
  let dir: string;

  beforeEach(() => {
    dir = makeTempDir("steward-nbdcreds-");
  });

  afterEach(() => removeDir(dir));

  it("finds a named set only when it holds the three files QEMU reads", async () => {
    const credentials = new FolderNbdCredentials(path.join(dir, "nbd-tls"), undefined);
    const set = path.join(dir, "nbd-tls", "mine");
    fs.mkdirSync(set, { recursive: true });
    fs.writeFileSync(path.join(set, "ca-cert.pem"), "ca");
    fs.writeFileSync(path.join(set, "server-cert.pem"), "cert");
    expect(await credentials.folder("mine")).toBeUndefined();
    fs.writeFileSync(path.join(set, "server-key.pem"), "key");
    expect(await credentials.folder("mine")).toBe(set);
    expect(await credentials.folder("other")).toBeUndefined();
  });

  it("makes Steward's own set of its API's certificate, key and client CA, and has none without them", async () => {
    expect(await new FolderNbdCredentials(path.join(dir, "nbd-tls"), undefined).folder("")).toBeUndefined();
    for (const [name, text] of [["cert.pem", "cert"], ["key.pem", "key"], ["clients.pem", "ca"]]) fs.writeFileSync(path.join(dir, name), text);
    const own = new FolderNbdCredentials(path.join(dir, "nbd-tls"), { certFile: path.join(dir, "cert.pem"), keyFile: path.join(dir, "key.pem"), clientCaFile: path.join(dir, "clients.pem") });
    const folder = (await own.folder(""))!;
    expect(["ca-cert.pem", "server-cert.pem", "server-key.pem"].map((file) => fs.readFileSync(path.join(folder, file), "utf8"))).toEqual(["ca", "cert", "key"]);
    expect(fs.statSync(path.join(folder, "server-key.pem")).mode & 0o777).toBe(0o600);
    // Renewed files are taken up at the next start of the server.
    fs.writeFileSync(path.join(dir, "cert.pem"), "renewed");
    expect(fs.readFileSync(path.join((await own.folder(""))!, "server-cert.pem"), "utf8")).toBe("renewed");
  });
});
