import { DomainError, InvalidFieldError } from "../errors";
import type { Log } from "../../ports/log";
import type { StorageDriver, StorageDriverCatalog, StorageDriverInfo, StorageDriverParameter, TakenLocation } from "../../ports/storage-driver";
import type { Store } from "../../ports/store";
import type { Clock } from "../../ports/clock";
import type { EventLog } from "../events/event-log";
import { DEFAULT_POOL, type PoolRecord } from "../model/pool";
import type { CallContext } from "../shared/call-context";
import { KeyedQueue } from "../shared/keyed-queue";
import type { RequestLedger } from "../shared/request-ledger";
import { requestResultGone } from "../vms/vm-errors";
import { invalidPoolName, invalidPoolParameter, poolExists, poolInUse, poolNotFound, poolOverLimit, poolQuotaExceeded, poolUnavailable } from "./storage-errors";
import { poolAdd, poolDelete, poolSet, poolSpaceLow } from "./storage-events";

const POOL_NAME = /^[A-Za-z][A-Za-z0-9_.-]*$/;
const MAX_POOL_NAME = 63;
/** More revisions than anyone keeps, so that a typo cannot make every volume keep its every past. */
export const MAX_REVISIONS_TO_KEEP = 1000;

/** The share of a pool's size left (percent) under which it is low on space, unless configured otherwise. */
export const DEFAULT_SPACE_LOW_PERCENT = 10;
/** How often, at most, a pool's room is measured after changes that write into it. */
const SPACE_LOOK_MS = 1000;

/** The parameters every pool takes, whatever its driver: the core reads them, the driver never sees them. */
export const POOL_PARAMETERS: readonly StorageDriverParameter[] = [
  {
    name: "revisions_to_keep",
    type: "int",
    required: false,
    default: "1",
    help: `How many old revisions each volume of the pool keeps unless it says otherwise, 0 to ${MAX_REVISIONS_TO_KEEP}`,
  },
  {
    name: "ephemeral_volatile",
    type: "bool",
    required: false,
    default: "false",
    help: "Whether the pool's volatile volumes are encrypted with a key that exists only while their VM runs",
  },
];

/** A pool with what it takes and holds, as GetPool tells it. */
export interface PoolView extends PoolRecord {
  /** What it can hold: its filesystem's size, or its limit when lower; 0 when unbounded or unavailable. */
  sizeBytes: number;
  usageBytes: number;
  freeBytes: number;
  volumeCount: number;
}

/**
 * A pool that is no record of the store, but always there while Steward runs (linux-kernel): it
 * is listed and shown as the others, but nothing may add, change or remove it, nor write in it.
 */
export interface BuiltInPool {
  readonly name: string;
  view(): Promise<PoolView>;
  /** The refusal of a change of it, or of its volumes' making or deleting (FAILED_PRECONDITION). */
  refusal(): DomainError;
}

/** The pool a first start makes, of the first driver in `choices` that can keep it. */
export interface DefaultPool {
  name: string;
  choices: readonly { driver: string; parameters: Readonly<Record<string, string>> }[];
}

/** Which global properties choose a pool for new volumes; a pool they name cannot be removed. */
const POOL_GLOBALS = ["default_pool", "default_pool_root", "default_pool_private", "default_pool_volatile", "default_pool_kernel"];

/** What each of POOL_GLOBALS names: its stored value, or its default (default_pool's for the others). */
function poolDefaults(stored: Readonly<Record<string, string>>): Record<string, string> {
  const pool = stored.default_pool ?? DEFAULT_POOL;
  return Object.fromEntries(POOL_GLOBALS.map((global) => [global, stored[global] ?? pool]));
}

/** A catalog of no driver, for a core built without storage (tests of other areas). */
const NO_DRIVERS: StorageDriverCatalog = {
  list: () => [],
  describe: (name) => {
    throw poolUnavailable(name, "this Steward has no pool drivers");
  },
  open: async (name) => {
    throw poolUnavailable(name, "this Steward has no pool drivers");
  },
  locations: () => [],
};

/**
 * The host's pools (Qubes' pool.*): their records in the store, and their drivers, opened when
 * Steward starts or when AddPool adds one. Adding and removing pools run one at a time.
 */
export class Pools {
  /** Each stored pool's driver, or why it could not be opened. */
  private readonly opened = new Map<string, StorageDriver | DomainError>();
  private readonly queue = new KeyedQueue();
  /** Bytes that changes under way may still write, per pool: counted against its limit, so that two at once cannot both pass it. */
  private readonly reserved = new Map<string, number>();
  /** Each pool's room as last measured (noteSpace), and the pools that are low on it. */
  private readonly spaceLooks = new Map<string, { at: number; roomBytes: number; sizeBytes: number; writtenSince: number }>();
  private readonly spaceLow = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly catalog: StorageDriverCatalog = NO_DRIVERS,
    private readonly events: EventLog,
    private readonly ledger: RequestLedger,
    private readonly clock: Clock,
    private readonly log: Log,
    /** Below this share of its size left (percent), a pool is low on space: pool-space-low. */
    private readonly spaceLowPercent = DEFAULT_SPACE_LOW_PERCENT,
    private readonly builtIn: readonly BuiltInPool[] = [],
  ) {}

  /**
   * Opens the stored pools' drivers; a pool that cannot open (its folder gone) is kept, and
   * answers FAILED_PRECONDITION (POOL_UNAVAILABLE) until a later start can open it. At the first
   * start (no pool, and default_pool never set) it makes `defaultPool` the host's default pool.
   */
  async open(defaultPool?: DefaultPool): Promise<void> {
    for (const pool of this.store.pools.list()) {
      try {
        this.opened.set(pool.name, await this.catalog.open(pool.driver, pool.parameters));
      } catch (error) {
        const cause = error instanceof Error ? error.message : String(error);
        this.opened.set(pool.name, poolUnavailable(pool.name, cause));
        this.log.warn({ pool: pool.name, driver: pool.driver, err: cause }, "a pool cannot be opened");
      }
    }
    if (defaultPool && this.store.pools.list().length === 0 && this.store.globals.all().default_pool === undefined) await this.makeDefault(defaultPool);
  }

  /** The drivers AddPool takes, each with the parameters every pool takes besides its own. */
  drivers(): StorageDriverInfo[] {
    return this.catalog.list().map((driver) => ({ ...driver, parameters: [...driver.parameters, ...POOL_PARAMETERS] }));
  }

  /** The pools, by name: the stored ones and the built-in ones. */
  async list(): Promise<PoolView[]> {
    const views = await Promise.all([...this.store.pools.list().map((pool) => this.view(pool)), ...this.builtIn.map((pool) => pool.view())]);
    return views.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async get(name: string): Promise<PoolView> {
    const builtIn = this.builtInNamed(name);
    return builtIn === undefined ? this.view(this.record(name)) : builtIn.view();
  }

  /** The built-in pool of that name, if it is one. */
  private builtInNamed(name: string): BuiltInPool | undefined {
    return this.builtIn.find((pool) => pool.name === name);
  }

  /**
   * The driver of pool `name`: NOT_FOUND (POOL_NOT_FOUND), or FAILED_PRECONDITION (POOL_UNAVAILABLE)
   * when it could not open, (POOL_READ_ONLY) for a built-in pool, which no driver writes.
   */
  driver(name: string): StorageDriver {
    this.record(name);
    const driver = this.opened.get(name);
    if (driver === undefined) throw poolUnavailable(name, "its driver is not open");
    if (driver instanceof DomainError) throw driver;
    return driver;
  }

  /**
   * Runs `work`, a change that may make pool `name` take up to `neededBytes` more, with that
   * room kept for it until it ends. The pool's limit bounds the bytes it takes on disk (GetPool's
   * usage): RESOURCE_EXHAUSTED (POOL_QUOTA_EXCEEDED) when those, what changes under way may still
   * write and `neededBytes` would pass it. A pool without a limit counts nothing. `writtenBytes`
   * is what the change really writes now (less for a sparse volume, whose guest fills it later):
   * what the pool's room is watched by.
   */
  async withRoom<T>(name: string, neededBytes: number, work: () => Promise<T>, writtenBytes = neededBytes): Promise<T> {
    const { limitBytes } = this.record(name);
    const counted = limitBytes > 0 && neededBytes > 0;
    // Kept before the usage is read, so that a change checked meanwhile counts this one.
    if (counted) this.reserved.set(name, (this.reserved.get(name) ?? 0) + neededBytes);
    try {
      if (counted) await this.refuseOverLimit(name, limitBytes, neededBytes, neededBytes);
      return await work();
    } finally {
      if (counted) {
        const left = (this.reserved.get(name) ?? 0) - neededBytes;
        if (left > 0) this.reserved.set(name, left);
        else this.reserved.delete(name);
      }
      if (writtenBytes > 0) await this.noteSpace(name, writtenBytes);
    }
  }

  /**
   * Refuses, as withRoom does, a change that would take the pool `neededBytes` past its limit,
   * counting what changes under way keep (for a size learnt midway: an image's virtual size).
   */
  async requireRoom(name: string, neededBytes: number): Promise<void> {
    const { limitBytes } = this.record(name);
    if (limitBytes > 0 && neededBytes > 0) await this.refuseOverLimit(name, limitBytes, neededBytes, 0);
  }

  /** POOL_QUOTA_EXCEEDED when what the pool takes, what is kept for changes under way (but `ownBytes`, the asker's) and `neededBytes` pass the limit. */
  private async refuseOverLimit(name: string, limitBytes: number, neededBytes: number, ownBytes: number): Promise<void> {
    const { usedBytes } = await this.driver(name).poolUsage();
    const taken = usedBytes + (this.reserved.get(name) ?? 0) - ownBytes;
    if (taken + neededBytes > limitBytes) throw poolQuotaExceeded(name, limitBytes, taken, neededBytes);
  }

  /**
   * After a change wrote up to `writtenBytes` into pool `name`: tells pool-space-low once the
   * room left (free space on its filesystem, or under its limit when that is less) falls below
   * the threshold share of its size, and again only after it has risen above it. Measuring may
   * walk the pool's folder, so it is done at most every SPACE_LOOK_MS, unless what was written
   * since the last measure may have taken the room below the threshold.
   */
  private async noteSpace(name: string, writtenBytes: number): Promise<void> {
    const now = this.clock.now().getTime();
    const last = this.spaceLooks.get(name);
    if (last !== undefined) {
      last.writtenSince += writtenBytes;
      if (now - last.at < SPACE_LOOK_MS && last.roomBytes - last.writtenSince >= this.lowBelow(last.sizeBytes)) return;
    }
    try {
      const view = await this.get(name);
      const roomBytes = view.limitBytes > 0 ? Math.min(view.freeBytes, Math.max(0, view.limitBytes - view.usageBytes)) : view.freeBytes;
      this.spaceLooks.set(name, { at: now, roomBytes, sizeBytes: view.sizeBytes, writtenSince: 0 });
      const low = view.sizeBytes > 0 && roomBytes < this.lowBelow(view.sizeBytes);
      if (low && !this.spaceLow.has(name)) {
        this.spaceLow.add(name);
        this.store.transaction(() => this.events.append(poolSpaceLow(name, roomBytes, view.sizeBytes, this.spaceLowPercent)));
        this.log.warn({ pool: name, free_bytes: roomBytes, size_bytes: view.sizeBytes }, "a pool is low on space");
      } else if (!low) this.spaceLow.delete(name);
    } catch (error) {
      this.log.warn({ pool: name, err: error instanceof Error ? error.message : String(error) }, "could not measure a pool's room");
    }
  }

  private lowBelow(sizeBytes: number): number {
    return (sizeBytes * this.spaceLowPercent) / 100;
  }

  /**
   * Adds a pool of `driver` (pool.Add). `parameters` are the driver's, with revisions_to_keep and
   * ephemeral_volatile besides. With a request_id, a retry returns the pool the first call added.
   */
  async add(name: string, driver: string, parameters: Readonly<Record<string, string>>, ctx: CallContext, requestId = ""): Promise<PoolView> {
    this.ledger.checkKey(requestId);
    if (!POOL_NAME.test(name) || name.length > MAX_POOL_NAME) throw invalidPoolName("name");
    const asked = { name, driver, parameters };
    return this.queue.run("pools", { caller: ctx, what: `add pool ${name}` }, async () => {
      const earlier = this.ledger.earlier(requestId, "AddPool", asked);
      if (earlier !== undefined) {
        const added = this.store.pools.get(earlier);
        if (!added) throw requestResultGone(requestId, "pool");
        return this.view(added);
      }
      if (this.store.pools.get(name) || this.builtInNamed(name)) throw poolExists(name);
      const { settings, driverParameters } = splitParameters(parameters);
      const opened = await this.catalog.open(driver, driverParameters, this.takenLocations());
      const record: PoolRecord = { name, driver, parameters: driverParameters, ...settings, limitBytes: 0, createdAt: this.clock.now() };
      this.store.transaction(() => {
        if (this.store.pools.get(name)) throw poolExists(name);
        this.store.pools.insert(record);
        this.events.append(poolAdd(name, driver));
        this.ledger.remember(requestId, "AddPool", asked, name);
      });
      this.opened.set(name, opened);
      return this.view(record);
    });
  }

  /** Removes a pool (pool.Remove); its files stay. Refused while it holds volumes or a global property names it. */
  async remove(name: string, ctx: CallContext): Promise<void> {
    await this.queue.run("pools", { caller: ctx, what: `remove pool ${name}` }, async () => {
      this.record(name);
      const defaults = poolDefaults(this.store.globals.all());
      const naming = POOL_GLOBALS.filter((global) => defaults[global] === name);
      if (naming.length > 0) throw poolInUse(name, `the global property ${naming.join(" and ")} names it`);
      const volumes = this.store.volumes.countInPool(name);
      if (volumes > 0) throw poolInUse(name, `it holds ${volumes} volume(s) of Steward's`);
      const driver = this.opened.get(name);
      if (driver !== undefined && !(driver instanceof DomainError)) {
        const vids = await driver.list();
        if (vids.length > 0) throw poolInUse(name, `it holds ${vids.length} volume(s): ${vids.slice(0, 3).join(", ")}${vids.length > 3 ? ", …" : ""}`);
      }
      this.store.transaction(() => {
        this.store.pools.remove(name);
        this.events.append(poolDelete(name));
      });
      this.opened.delete(name);
    });
  }

  /** Sets revisions_to_keep or ephemeral_volatile (pool.Set.*). */
  async setProperty(name: string, property: { revisionsToKeep: number } | { ephemeralVolatile: boolean }, _ctx: CallContext): Promise<PoolView> {
    const pool = this.store.transaction(() => {
      const record = this.record(name);
      if ("revisionsToKeep" in property) {
        checkRevisionsToKeep(property.revisionsToKeep, "revisions_to_keep");
        return this.change(record, "revisions_to_keep", { ...record, revisionsToKeep: property.revisionsToKeep }, String(record.revisionsToKeep), String(property.revisionsToKeep));
      }
      return this.change(record, "ephemeral_volatile", { ...record, ephemeralVolatile: property.ephemeralVolatile }, pyBool(record.ephemeralVolatile), pyBool(property.ephemeralVolatile));
    });
    return this.view(pool);
  }

  /** Sets the pool's quota (machined's SetPoolLimit); 0 removes it. Refused below what the pool uses already. */
  async setLimit(name: string, limitBytes: number, _ctx: CallContext): Promise<PoolView> {
    this.record(name);
    if (limitBytes > 0) {
      const { usedBytes } = await this.driver(name).poolUsage();
      if (usedBytes > limitBytes) throw poolOverLimit(name, usedBytes, limitBytes);
    }
    const pool = this.store.transaction(() => {
      const record = this.record(name);
      return this.change(record, "limit_bytes", { ...record, limitBytes }, String(record.limitBytes), String(limitBytes));
    });
    return this.view(pool);
  }

  /** The stored pool of that name: NOT_FOUND (POOL_NOT_FOUND); FAILED_PRECONDITION (POOL_READ_ONLY) for a built-in one. */
  private record(name: string): PoolRecord {
    const builtIn = this.builtInNamed(name);
    if (builtIn !== undefined) throw builtIn.refusal();
    const pool = name === "" ? undefined : this.store.pools.get(name);
    if (!pool) throw poolNotFound(name);
    return pool;
  }

  /** Writes a changed setting with its event; nothing when the value is the same. Within a transaction. */
  private change(record: PoolRecord, property: string, changed: PoolRecord, oldValue: string, newValue: string): PoolRecord {
    if (oldValue === newValue) return record;
    this.store.pools.update(record.name, changed);
    this.events.append(poolSet(record.name, property, newValue, oldValue));
    return changed;
  }

  private async view(pool: PoolRecord): Promise<PoolView> {
    const driver = this.opened.get(pool.name);
    if (driver === undefined || driver instanceof DomainError) return { ...pool, sizeBytes: 0, usageBytes: 0, freeBytes: 0, volumeCount: this.store.volumes.countInPool(pool.name) };
    const usage = await driver.poolUsage();
    const capacity = usage.capacityBytes ?? 0;
    const sizeBytes = pool.limitBytes > 0 && (capacity === 0 || pool.limitBytes < capacity) ? pool.limitBytes : capacity;
    return { ...pool, sizeBytes, usageBytes: usage.usedBytes, freeBytes: usage.freeBytes ?? 0, volumeCount: this.store.volumes.countInPool(pool.name) };
  }

  /** The folders the stored pools keep their volumes in. */
  private takenLocations(): TakenLocation[] {
    return this.store.pools.list().flatMap((pool) => {
      try {
        return this.catalog.locations(pool.driver, pool.parameters).map((path) => ({ pool: pool.name, path }));
      } catch {
        return []; // A driver this Steward no longer has: its pool's folder is not known.
      }
    });
  }

  private async makeDefault({ name, choices }: DefaultPool): Promise<void> {
    for (const [index, choice] of choices.entries()) {
      let driver: StorageDriver;
      try {
        driver = await this.catalog.open(choice.driver, choice.parameters, this.takenLocations());
      } catch (error) {
        if (index === choices.length - 1) throw error;
        continue;
      }
      const record: PoolRecord = { name, driver: choice.driver, parameters: choice.parameters, revisionsToKeep: 1, ephemeralVolatile: false, limitBytes: 0, createdAt: this.clock.now() };
      this.store.transaction(() => {
        this.store.pools.insert(record);
        this.events.append(poolAdd(name, choice.driver));
      });
      this.opened.set(name, driver);
      this.log.info({ pool: name, driver: choice.driver }, "made the default pool");
      return;
    }
  }
}

/** Takes the parameters every pool has out of AddPool's, checked; the rest are the driver's. */
function splitParameters(parameters: Readonly<Record<string, string>>): {
  settings: Pick<PoolRecord, "revisionsToKeep" | "ephemeralVolatile">;
  driverParameters: Record<string, string>;
} {
  const { revisions_to_keep: revisions = "1", ephemeral_volatile: ephemeral = "false", ...driverParameters } = parameters;
  if (!/^[0-9]+$/.test(revisions)) throw invalidPoolParameter("revisions_to_keep", `must be a whole number from 0 to ${MAX_REVISIONS_TO_KEEP}, not ${JSON.stringify(revisions)}`);
  const revisionsToKeep = Number(revisions);
  checkRevisionsToKeep(revisionsToKeep, "parameters[revisions_to_keep]");
  if (!/^(true|false)$/i.test(ephemeral)) throw invalidPoolParameter("ephemeral_volatile", `must be true or false, not ${JSON.stringify(ephemeral)}`);
  return { settings: { revisionsToKeep, ephemeralVolatile: /^true$/i.test(ephemeral) }, driverParameters };
}

export function checkRevisionsToKeep(revisions: number, field: string): void {
  if (!Number.isSafeInteger(revisions) || revisions < 0 || revisions > MAX_REVISIONS_TO_KEEP) {
    throw new InvalidFieldError(field, `must be from 0 to ${MAX_REVISIONS_TO_KEEP}, not ${revisions}`);
  }
}

/** How Qubes writes a boolean in an event. */
function pyBool(value: boolean): string {
  return value ? "True" : "False";
}
