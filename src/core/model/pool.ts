/** The pool Steward makes at its first start (Qubes' varlibqubes), which default_pool names unless set. */
export const DEFAULT_POOL = "default";

/**
 * The pool of the kernels' modules, as Qubes names it (its linux-kernel driver): the host's
 * kernel folder, read-only, there whenever Steward has a kernel folder. No pool of the store.
 */
export const KERNEL_POOL = "linux-kernel";

/** A storage pool as the store keeps it (Qubes' pool: a driver and its parameters). */
export interface PoolRecord {
  name: string;
  driver: string;
  /** The driver's parameters as AddPool gave them, as text: defaults are the driver's, filled in when it opens. */
  parameters: Readonly<Record<string, string>>;
  /** How many old revisions each volume of the pool keeps unless the volume says otherwise. */
  revisionsToKeep: number;
  /** Whether the pool's volatile volumes are encrypted with a key that lives only while their VM runs. */
  ephemeralVolatile: boolean;
  /** A quota on the bytes its volumes take; 0 for none. */
  limitBytes: number;
  createdAt: Date;
}
