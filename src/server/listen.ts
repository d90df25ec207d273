import * as grpc from "@grpc/grpc-js";
import * as fs from "node:fs";
import type { ListenAddress, TlsFiles } from "../config";

/** Socket mode: the owner and its group may call; others may not reach the socket at all. */
export const UNIX_SOCKET_MODE = 0o660;

export function serverCredentials(tls: TlsFiles | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  const keyCertPair = { cert_chain: fs.readFileSync(tls.certFile), private_key: fs.readFileSync(tls.keyFile) };
  const clientCa = tls.clientCaFile ? fs.readFileSync(tls.clientCaFile) : null;
  return grpc.ServerCredentials.createSsl(clientCa, [keyCertPair], clientCa !== null);
}

/** Binds one address; returns it as bound (with the port chosen for port 0). */
export async function bind(server: grpc.Server, address: ListenAddress, tls: grpc.ServerCredentials): Promise<string> {
  if (address.kind === "unix") {
    removeStaleSocket(address.path);
    await bindAsync(server, `unix:${address.path}`, grpc.ServerCredentials.createInsecure());
    fs.chmodSync(address.path, UNIX_SOCKET_MODE);
    return `unix:${address.path}`;
  }
  const host = address.host.includes(":") ? `[${address.host}]` : address.host;
  const port = await bindAsync(server, `${host}:${address.port}`, tls);
  return `${host}:${port}`;
}

function bindAsync(server: grpc.Server, target: string, credentials: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(target, credentials, (error, port) =>
      error ? reject(new Error(`cannot listen on ${target}: ${error.message}`)) : resolve(port),
    ),
  );
}

/**
 * A socket left by a server that died. The caller holds the data folder's lock, so no live
 * server owns it; anything that is not a socket is left alone.
 */
function removeStaleSocket(socketPath: string): void {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(socketPath);
  } catch {
    return;
  }
  if (!stat.isSocket()) throw new Error(`cannot listen on unix:${socketPath}: a file that is not a socket is there`);
  fs.unlinkSync(socketPath);
}

export function removeSocket(address: string): void {
  if (address.startsWith("unix:")) fs.rmSync(address.slice("unix:".length), { force: true });
}
