import * as grpc from "@grpc/grpc-js";
import * as fs from "node:fs";
import * as net from "node:net";
import type { ListenAddress, TlsFiles } from "../config";

/** An address this server cannot listen on, and why: a start-up error to report, not a crash. */
export class ListenError extends Error {
  override name = "ListenError";
}

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
    await removeStaleSocket(address.path);
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
      error ? reject(new ListenError(`cannot listen on ${target}: ${error.message}`)) : resolve(port),
    ),
  );
}

/**
 * Removes a socket left by a server that died. A socket that answers belongs to a live server
 * (one on another data folder, say): it is left alone, and this server does not start; anything
 * that is not a socket is left alone too.
 */
async function removeStaleSocket(socketPath: string): Promise<void> {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(socketPath);
  } catch {
    return;
  }
  if (!stat.isSocket()) throw new ListenError(`cannot listen on unix:${socketPath}: a file that is not a socket is there`);
  if (await answers(socketPath)) {
    throw new ListenError(`cannot listen on unix:${socketPath}: another server listens there; stop it, or give this one another --listen`);
  }
  fs.unlinkSync(socketPath);
}

/** Whether something accepts connections on the socket. */
function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(socketPath);
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
}

export function removeSocket(address: string): void {
  if (address.startsWith("unix:")) fs.rmSync(address.slice("unix:".length), { force: true });
}
