/**
 * How many clients a QEMU process's NBD server has: QMP does not say, so it is read off /proc,
 * as ss(8) does: the process's connected sockets whose local end is the server's address.
 */
import * as fsp from "node:fs/promises";
import type { NbdAddress } from "../../../ports/block-exporter";

/** TCP's ESTABLISHED in /proc/net/tcp; a unix stream socket's SS_CONNECTED in /proc/net/unix. */
const TCP_ESTABLISHED = "01";
const UNIX_CONNECTED = "03";

export async function nbdConnectionCount(pid: number, address: NbdAddress): Promise<number> {
  const inodes = await socketInodes(pid);
  if (inodes.size === 0) return 0;
  if (address.kind === "unix") {
    const table = await fsp.readFile(`/proc/${pid}/net/unix`, "utf8").catch(() => "");
    return countUnix(table, address.path, inodes);
  }
  const tables = await Promise.all(["tcp", "tcp6"].map((name) => fsp.readFile(`/proc/${pid}/net/${name}`, "utf8").catch(() => "")));
  return tables.reduce((sum, table) => sum + countTcp(table, address.port, inodes), 0);
}

/** The inodes of the sockets a process holds open. */
async function socketInodes(pid: number): Promise<Set<string>> {
  const fdDir = `/proc/${pid}/fd`;
  const names = await fsp.readdir(fdDir).catch(() => [] as string[]);
  const links = await Promise.all(names.map((name) => fsp.readlink(`${fdDir}/${name}`).catch(() => "")));
  return new Set(links.map((link) => /^socket:\[(\d+)\]$/.exec(link)?.[1]).filter((inode): inode is string => inode !== undefined));
}

/** Connected sockets accepted on `socketPath` (an accepted unix socket shows its listener's path). */
export function countUnix(table: string, socketPath: string, inodes: ReadonlySet<string>): number {
  let count = 0;
  for (const line of table.split("\n").slice(1)) {
    // Num RefCount Protocol Flags Type St Inode Path
    const fields = line.trim().split(/\s+/);
    if (fields.length < 8 || fields[5] !== UNIX_CONNECTED || !inodes.has(fields[6])) continue;
    if (fields.slice(7).join(" ") === socketPath) count++;
  }
  return count;
}

/** Established connections whose local port is `port`. */
export function countTcp(table: string, port: number, inodes: ReadonlySet<string>): number {
  let count = 0;
  for (const line of table.split("\n").slice(1)) {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10 || fields[3] !== TCP_ESTABLISHED || !inodes.has(fields[9])) continue;
    const localPort = parseInt(fields[1].split(":")[1] ?? "", 16);
    if (localPort === port) count++;
  }
  return count;
}
