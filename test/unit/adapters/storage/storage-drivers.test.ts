import { MemoryStorageDriver } from "../../../../src/adapters/storage/memory/memory-storage-driver";
import {
  defineStorageDriver,
  MEMORY_STORAGE_DRIVER,
  STORAGE_DRIVERS,
  StorageDriverRegistry,
  type StorageDriverEntry,
} from "../../../../src/adapters/storage/storage-drivers";
import type { StorageDriverParameterValues } from "../../../../src/ports/storage-driver";
import { InvalidFieldError } from "../../../../src/core/errors";
import { invalidDriverParameter, unknownPoolDriver } from "../../../../src/ports/storage-errors";

const PARAMETER_REASON = invalidDriverParameter("x", "").reason;

async function refusal(call: () => unknown): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  throw new Error("the call succeeded, but it should have failed");
}

async function expectParameterRefused(call: () => Promise<unknown>, parameter: string, description: RegExp): Promise<void> {
  const error = await refusal(call);
  expect(error).toBeInstanceOf(InvalidFieldError);
  expect(error).toMatchObject({ kind: "invalid-argument", reason: PARAMETER_REASON, field: `parameters[${parameter}]` });
  expect((error as Error).message).toMatch(description);
}

/** A driver of every parameter type that remembers what it was opened with. */
function recordingEntry(name: string): { entry: StorageDriverEntry; opened: StorageDriverParameterValues[] } {
  const opened: StorageDriverParameterValues[] = [];
  const entry = defineStorageDriver({
    name,
    description: `the ${name} test driver`,
    parameters: [
      { name: "dir_path", type: "path", required: true, help: "where" },
      { name: "label", type: "str", required: false, help: "a label" },
      { name: "verbose", type: "bool", required: false, default: "false", help: "whether to chatter" },
      { name: "revisions_to_keep", type: "int", required: false, default: "1", help: "how many" },
    ],
    async open(parameters) {
      opened.push(parameters);
      return new MemoryStorageDriver();
    },
  });
  return { entry, opened };
}

describe("StorageDriverRegistry", () => {
  it("offers no driver of the tests in the production table", () => {
    expect(STORAGE_DRIVERS.map((entry) => entry.name)).not.toContain("memory");
  });

  describe("with the memory driver", () => {
    const registry = new StorageDriverRegistry([MEMORY_STORAGE_DRIVER]);

    it("lists the memory driver with its parameters", () => {
      expect(registry.list()).toEqual([
        {
          name: "memory",
          description: expect.stringContaining("gone when it stops"),
          parameters: [{ name: "capacity_bytes", type: "int", required: false, default: "0", help: expect.stringContaining("0 for no limit") }],
        },
      ]);
      expect(registry.describe("memory")).toEqual(registry.list()[0]);
    });

    it("opens the memory driver unlimited by default, and with the capacity given", async () => {
      const unlimited = await registry.open("memory", {});
      expect(unlimited).toBeInstanceOf(MemoryStorageDriver);
      expect(await unlimited.poolUsage()).toEqual({ usedBytes: 0, capacityBytes: undefined, freeBytes: undefined });
      expect(await (await registry.open("memory", { capacity_bytes: "1048576" })).poolUsage()).toEqual({ usedBytes: 0, capacityBytes: 1048576, freeBytes: 1048576 });
    });

    it("refuses parameters the driver does not take, or not of their type, naming them", async () => {
      await expectParameterRefused(() => registry.open("memory", { dir_path: "/srv" }), "dir_path", /not a parameter of the memory driver, which takes capacity_bytes/);
      for (const text of ["abc", "1.5", "", " 1", "1e6", "0x10", "9007199254740993"]) {
        await expectParameterRefused(() => registry.open("memory", { capacity_bytes: text }), "capacity_bytes", /must be an integer/);
      }
      await expectParameterRefused(() => registry.open("memory", { capacity_bytes: "-1" }), "capacity_bytes", /must be 0 or more/);
    });

    it("refuses a driver it does not have, naming the field", async () => {
      for (const call of [() => registry.open("zfs", {}), () => registry.describe("zfs")]) {
        const error = await refusal(call);
        expect(error).toBeInstanceOf(InvalidFieldError);
        expect(error).toMatchObject({ kind: "invalid-argument", reason: unknownPoolDriver("zfs").reason, field: "driver" });
        expect((error as Error).message).toContain("zfs");
      }
    });
  });

  describe("with drivers of every parameter type", () => {
    it("lists them by name", () => {
      const registry = new StorageDriverRegistry([recordingEntry("zeta").entry, recordingEntry("alpha").entry]);
      expect(registry.list().map((driver) => driver.name)).toEqual(["alpha", "zeta"]);
    });

    it("opens a driver with the values read by type, and defaults where none was given", async () => {
      const { entry, opened } = recordingEntry("test");
      const registry = new StorageDriverRegistry([entry]);
      await registry.open("test", { dir_path: "/var/lib/steward/pools/fast" });
      await registry.open("test", { dir_path: "/srv", label: "", verbose: "True", revisions_to_keep: "3" });
      expect(opened).toEqual([
        { dir_path: "/var/lib/steward/pools/fast", label: undefined, verbose: false, revisions_to_keep: 1 },
        { dir_path: "/srv", label: "", verbose: true, revisions_to_keep: 3 },
      ]);
    });

    it("refuses a missing required parameter and values not of their type", async () => {
      const { entry, opened } = recordingEntry("test");
      const registry = new StorageDriverRegistry([entry]);
      await expectParameterRefused(() => registry.open("test", {}), "dir_path", /is required/);
      await expectParameterRefused(() => registry.open("test", { dir_path: "relative/path" }), "dir_path", /must be an absolute path/);
      await expectParameterRefused(() => registry.open("test", { dir_path: "/srv", verbose: "yes" }), "verbose", /must be true or false/);
      await expectParameterRefused(() => registry.open("test", { dir_path: "/srv", revisions_to_keep: "many" }), "revisions_to_keep", /must be an integer, not "many"/);
      expect(opened).toEqual([]);
    });

    it("ignores what an object inherits: only the given object's own keys are parameters", async () => {
      const { entry, opened } = recordingEntry("test");
      const given = Object.assign(Object.create({ label: "inherited" }) as Record<string, string>, { dir_path: "/srv" });
      await new StorageDriverRegistry([entry]).open("test", given);
      expect(opened[0]).toMatchObject({ label: undefined });
    });
  });

  describe("refuses a table that contradicts itself", () => {
    const entry = (parameters: StorageDriverEntry["parameters"], name = "bad"): StorageDriverEntry => ({
      name,
      description: "",
      parameters,
      open: async () => new MemoryStorageDriver(),
    });

    it.each([
      ["two drivers of one name", [entry([], "same"), entry([], "same")], /two storage drivers are named same/],
      ["a parameter declared twice", [entry([{ name: "p", type: "str", required: false, help: "" }, { name: "p", type: "int", required: false, help: "" }])], /declared twice/],
      ["a required parameter with a default", [entry([{ name: "p", type: "int", required: true, default: "1", help: "" }])], /required and has a default/],
      ["a default not of its type", [entry([{ name: "p", type: "int", required: false, default: "one", help: "" }])], /default that is not an integer/],
    ])("%s", (_, entries, message) => {
      expect(() => new StorageDriverRegistry(entries)).toThrow(message);
    });
  });
});
