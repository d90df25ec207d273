/**
 * The pool drivers, in the manner of Incus' storage/drivers/load.go: one table of entries, each
 * describing itself, feeds both AddPool (open a driver with its parameters) and ListPoolDrivers
 * (which drivers there are, and what they take). Adding a driver is one entry here. This is the
 * one file that names driver implementations.
 */
import type {
  ParameterValueTypes,
  StorageDriver,
  StorageDriverCatalog,
  StorageDriverInfo,
  StorageDriverParameter,
  StorageDriverParameterType,
  StorageDriverParameterValue,
  StorageDriverParameterValues,
  TakenLocation,
} from "../../ports/storage-driver";
import { invalidDriverParameter, poolLocationUnusable, unknownPoolDriver } from "../../ports/storage-errors";
import { resolvedPath, within } from "./shared/locations";
import { FileStorageDriver } from "./file/file-storage-driver";
import { FileReflinkStorageDriver } from "./file-reflink/file-reflink-storage-driver";
import { MemoryStorageDriver } from "./memory/memory-storage-driver";
import { Qcow2StorageDriver } from "./qcow2/qcow2-storage-driver";

export interface StorageDriverEntry extends StorageDriverInfo {
  /** Opens a pool of the driver; FAILED_PRECONDITION when it cannot use what the parameters name. */
  open(parameters: StorageDriverParameterValues): Promise<StorageDriver>;
}

/** The values of `P` by name, typed: a required parameter or one with a default is never undefined. */
type ParameterValuesOf<P extends readonly StorageDriverParameter[]> = {
  readonly [E in P[number] as E["name"]]: ParameterValueTypes[E["type"]] | (E extends { required: true } | { default: string } ? never : undefined);
};

/** An entry whose open() sees its own parameters typed, so a driver's factory needs no casts. */
export function defineStorageDriver<const P extends readonly StorageDriverParameter[]>(
  entry: StorageDriverInfo & { parameters: P; open(parameters: ParameterValuesOf<P>): Promise<StorageDriver> },
): StorageDriverEntry {
  // The registry hands open() only values it checked against these very parameters.
  return { ...entry, open: (parameters) => entry.open(parameters as ParameterValuesOf<P>) };
}

/** Reads a parameter's text; undefined when it is not of the type. */
const PARSERS: { readonly [T in StorageDriverParameterType]: (text: string) => ParameterValueTypes[T] | undefined } = {
  str: (text) => text,
  int: (text) => (/^(?:0|-?[1-9][0-9]*)$/.test(text) && Number.isSafeInteger(Number(text)) ? Number(text) : undefined),
  // Any case, since Qubes writes True and False.
  bool: (text) => (/^true$/i.test(text) ? true : /^false$/i.test(text) ? false : undefined),
  path: (text) => (text.startsWith("/") && !text.includes("\0") ? text : undefined),
};

const EXPECTED: { readonly [T in StorageDriverParameterType]: string } = {
  str: "a string",
  int: "an integer",
  bool: "true or false",
  path: "an absolute path",
};

/** Steward's own folder (the data folder) and the one folder in it where pools may be. */
export interface OwnFolders {
  dataDir: string;
  poolsDir: string;
}

/** The drivers a host offers, by name. */
export class StorageDriverRegistry implements StorageDriverCatalog {
  private readonly entries = new Map<string, StorageDriverEntry>();

  /** Throws when two entries share a name or an entry's parameters contradict themselves: the table is wrong. */
  constructor(
    entries: readonly StorageDriverEntry[],
    private readonly own?: OwnFolders,
  ) {
    for (const entry of entries) {
      if (this.entries.has(entry.name)) throw new Error(`two storage drivers are named ${entry.name}`);
      checkParameters(entry);
      this.entries.set(entry.name, entry);
    }
  }

  /** Every driver, by name: what ListPoolDrivers answers. */
  list(): StorageDriverInfo[] {
    return [...this.entries.keys()].sort().map((name) => this.describe(name));
  }

  /** One driver; INVALID_ARGUMENT (POOL_DRIVER_NOT_FOUND) when there is no such driver. */
  describe(name: string): StorageDriverInfo {
    const { description, parameters } = this.entry(name);
    return { name, description, parameters };
  }

  /**
   * Opens a pool of driver `name` with the parameters AddPool was given: each must be one the
   * driver declares, of its type, and every required one given; the others get their defaults.
   */
  async open(name: string, given: Readonly<Record<string, string>>, taken: readonly TakenLocation[] = []): Promise<StorageDriver> {
    const entry = this.entry(name);
    const values = parameterValues(entry, given);
    for (const location of locationsOf(entry, values)) await this.checkLocation(location, taken);
    return entry.open(values);
  }

  locations(name: string, given: Readonly<Record<string, string>>): string[] {
    const entry = this.entry(name);
    return locationsOf(entry, parameterValues(entry, given));
  }

  /** A pool's folder is inside no other pool's and holds none, nor Steward's own files (but for its pools folder). */
  private async checkLocation(location: string, taken: readonly TakenLocation[]): Promise<void> {
    const place = await resolvedPath(location);
    for (const other of taken) {
      const theirs = await resolvedPath(other.path);
      if (within(place, theirs)) throw poolLocationUnusable(location, `it is inside the folder of pool ${other.pool}`);
      if (within(theirs, place)) throw poolLocationUnusable(location, `it holds the folder of pool ${other.pool}`);
    }
    if (this.own === undefined) return;
    const dataDir = await resolvedPath(this.own.dataDir);
    const poolsDir = await resolvedPath(this.own.poolsDir);
    if (within(dataDir, place)) throw poolLocationUnusable(location, "it holds Steward's own files");
    if (within(place, dataDir) && !(within(place, poolsDir) && place !== poolsDir)) {
      throw poolLocationUnusable(location, `it is among Steward's own files: a pool in Steward's folder goes in a folder of ${this.own.poolsDir}`);
    }
  }

  private entry(name: string): StorageDriverEntry {
    const entry = this.entries.get(name);
    if (!entry) throw unknownPoolDriver(name);
    return entry;
  }
}

function parameterValues(entry: StorageDriverEntry, given: Readonly<Record<string, string>>): StorageDriverParameterValues {
  const declared = new Set(entry.parameters.map((parameter) => parameter.name));
  for (const name of Object.keys(given)) {
    if (!declared.has(name)) throw invalidDriverParameter(name, `is not a parameter of the ${entry.name} driver, which takes ${describeNames(declared)}`);
  }
  const values: Record<string, StorageDriverParameterValue | undefined> = {};
  for (const parameter of entry.parameters) {
    const text = Object.hasOwn(given, parameter.name) ? given[parameter.name] : undefined;
    values[parameter.name] = parameterValue(parameter, text);
  }
  return values;
}

/** A given parameter's value, or its default. */
function parameterValue(parameter: StorageDriverParameter, text: string | undefined): StorageDriverParameterValue | undefined {
  const effective = text ?? parameter.default;
  if (effective === undefined) {
    if (parameter.required) throw invalidDriverParameter(parameter.name, "is required");
    return undefined;
  }
  const value = PARSERS[parameter.type](effective);
  if (value === undefined) throw invalidDriverParameter(parameter.name, `must be ${EXPECTED[parameter.type]}, not ${JSON.stringify(effective)}`);
  return value;
}

/** The table's own mistakes, found when the registry is built rather than when a pool is added. */
function checkParameters(entry: StorageDriverEntry): void {
  const names = new Set<string>();
  for (const parameter of entry.parameters) {
    const where = `parameter ${parameter.name} of storage driver ${entry.name}`;
    if (names.has(parameter.name)) throw new Error(`${where} is declared twice`);
    names.add(parameter.name);
    if (parameter.default === undefined) continue;
    if (parameter.required) throw new Error(`${where} is required and has a default`);
    if (PARSERS[parameter.type](parameter.default) === undefined) throw new Error(`${where} has a default that is not ${EXPECTED[parameter.type]}`);
  }
}

function locationsOf(entry: StorageDriverEntry, values: StorageDriverParameterValues): string[] {
  return entry.parameters.filter((parameter) => parameter.type === "path").flatMap((parameter) => {
    const value = values[parameter.name];
    return typeof value === "string" ? [value] : [];
  });
}

function describeNames(names: ReadonlySet<string>): string {
  return names.size === 0 ? "none" : [...names].join(", ");
}

/** The memory driver; its capacity lets a test see a pool fill up. */
export const MEMORY_STORAGE_DRIVER = defineStorageDriver({
  name: "memory",
  description: "Volumes in the memory of the Steward process, gone when it stops: for tests",
  parameters: [
    {
      name: "capacity_bytes",
      type: "int",
      required: false,
      default: "0",
      help: "The most bytes the pool's volumes may take, revisions included; 0 for no limit",
    },
  ],
  async open({ capacity_bytes }) {
    if (capacity_bytes < 0) throw invalidDriverParameter("capacity_bytes", "must be 0 or more");
    return new MemoryStorageDriver({ capacityBytes: capacity_bytes });
  },
});

/** The folder a pool of files keeps its volumes in, as Qubes' file drivers name it. */
const DIR_PATH = {
  name: "dir_path",
  type: "path",
  required: true,
  help: "The folder of the pool's files, absolute: made when missing; not inside another pool or Steward's own files, nor holding them",
} as const;

export const FILE_STORAGE_DRIVER = defineStorageDriver({
  name: "file",
  description: "Sparse raw files in a folder, on any filesystem; revisions, start-time snapshots and clones are whole copies",
  parameters: [DIR_PATH],
  open: ({ dir_path }) => FileStorageDriver.open(dir_path),
});

export const FILE_REFLINK_STORAGE_DRIVER = defineStorageDriver({
  name: "file-reflink",
  description: "Sparse raw files on a filesystem with reflinks (btrfs, xfs): revisions, start-time snapshots and clones are reflink copies, which cost no space and no time",
  parameters: [DIR_PATH],
  open: ({ dir_path }) => FileReflinkStorageDriver.open(dir_path),
});

export const QCOW2_STORAGE_DRIVER = defineStorageDriver({
  name: "qcow2",
  description: "qcow2 images in a folder, through qemu-img: revisions and start-time snapshots are overlays backed by their source, which cost nothing however large it is",
  parameters: [DIR_PATH],
  open: ({ dir_path }) => Qcow2StorageDriver.open(dir_path),
});

/**
 * The drivers pools may use on this host. The memory driver is not one of them: its volumes
 * last only as long as the process, and it serves the tests (a registry of it alone, in them).
 */
export const STORAGE_DRIVERS: readonly StorageDriverEntry[] = [FILE_STORAGE_DRIVER, FILE_REFLINK_STORAGE_DRIVER, QCOW2_STORAGE_DRIVER];
