/**
 * What every Store must do, in the manner of containerd's snapshots testsuite: each adapter's
 * test is one call of storeContract, with a factory that opens a fresh store for each test and a
 * cleanup that closes and removes it. The cleanup runs after every test, even one that failed
 * and even one that closed the store itself.
 *
 * The suite holds an adapter to what the port's comments say and to what the core relies on
 * where a comment leaves room (the event hub's replay needs sequence numbers without gaps; the
 * read model's caches need a revision never to stand for two contents of one VM).
 */
import { randomUUID } from "node:crypto";
import type { NewEvent, StoredEvent } from "../../src/core/model/event";
import type { LabelRecord } from "../../src/core/model/label";
import type { OperationRecord } from "../../src/core/model/operation";
import type { PoolRecord } from "../../src/core/model/pool";
import type { VolumeRecord } from "../../src/core/model/volume";
import type { VmClassName } from "../../src/core/model/vm-classes";
import type { VmRecord } from "../../src/core/model/vm-record";
import type { Store } from "../../src/ports/store";

export interface StoreUnderTest {
  store: Store;
  cleanup(): void;
}

type NewVm = Omit<VmRecord, "tags" | "properties" | "revision" | "updatedAt">;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Qubes' eight labels, as a new store holds them. */
const BUILTIN_LABELS: readonly LabelRecord[] = [
  { name: "red", color: 0xcc0000, index: 1, builtin: true },
  { name: "orange", color: 0xf57900, index: 2, builtin: true },
  { name: "yellow", color: 0xedd400, index: 3, builtin: true },
  { name: "green", color: 0x73d216, index: 4, builtin: true },
  { name: "gray", color: 0x555753, index: 5, builtin: true },
  { name: "blue", color: 0x3465a4, index: 6, builtin: true },
  { name: "purple", color: 0x75507b, index: 7, builtin: true },
  { name: "black", color: 0x000000, index: 8, builtin: true },
];

const EVENT_TIME = new Date("2024-05-06T07:08:09.123Z");

/** An event about `subject`; a VM's event carries a uuid made from its name, the host's none. */
function event(name: string, subject = "", kwargs: Record<string, string> = {}): NewEvent {
  return { subject, subjectUuid: uuidOf(subject), name, kwargs };
}

function uuidOf(subject: string): string {
  return subject === "" ? "" : `uuid-of-${subject}`;
}

/** The error `work` throws; fails the test when it throws none. */
function thrownBy(work: () => unknown): unknown {
  try {
    work();
  } catch (error) {
    return error;
  }
  throw new Error("expected a throw, and there was none");
}

/** Runs `work`, ignoring what it throws: for attempts that may or may not be refused. */
function attempt(work: () => unknown): void {
  try {
    work();
  } catch {
    // A frozen record refuses the change; a copy takes it. Either way the store must not.
  }
}

const byIndex = (labels: readonly LabelRecord[]): LabelRecord[] => [...labels].sort((a, b) => a.index - b.index);
const sorted = (values: readonly string[]): string[] => [...values].sort();
const names = (records: readonly VmRecord[]): string[] => records.map((record) => record.name);

export function storeContract(name: string, open: () => StoreUnderTest): void {
  describe(`the Store port: ${name}`, () => {
    let store: Store;
    let cleanup: (() => void) | undefined;
    let openedFrom: number;
    let openedBy: number;

    beforeEach(() => {
      openedFrom = Date.now();
      const opened = open();
      openedBy = Date.now();
      store = opened.store;
      cleanup = () => opened.cleanup();
    });

    afterEach(() => {
      const done = cleanup;
      cleanup = undefined;
      done?.();
    });

    /** Inserts a VM (its uuid random, its createdAt a fixed ms-precise time) and returns what was inserted. */
    function insert(qid: number, vmName: string, klass: VmClassName = "AppVM"): NewVm {
      const vm: NewVm = { qid, uuid: randomUUID(), name: vmName, klass, createdAt: new Date(Date.UTC(2024, 0, 2, 3, 4, 5, qid)) };
      store.vms.insert(vm);
      return vm;
    }

    const revisionOf = (qid: number): number => store.vms.byQid(qid)!.revision;

    /** Appends events in one transaction; returns their sequence numbers. */
    function appendCommitted(...events: NewEvent[]): number[] {
      return store.transaction(() => events.map((e) => store.events.append(e, EVENT_TIME)));
    }

    describe("host()", () => {
      it("gives a uuid as hostId and the time the state was made as createdAt", () => {
        const host = store.host();
        expect(host.hostId).toMatch(UUID);
        expect(host.createdAt).toBeInstanceOf(Date);
        expect(host.createdAt.getTime()).toBeGreaterThanOrEqual(openedFrom);
        expect(host.createdAt.getTime()).toBeLessThanOrEqual(openedBy);
      });

      it("gives the same record on every call", () => {
        const first = store.host();
        store.globals.set("default_netvm", "1");
        const again = store.host();
        expect(again.hostId).toBe(first.hostId);
        expect(again.createdAt.getTime()).toBe(first.createdAt.getTime());
      });
    });

    describe("a new store", () => {
      it("holds dom0: qid 0, an AdminVM, found by qid, name and uuid", () => {
        const dom0 = store.vms.byQid(0);
        expect(dom0).toMatchObject({ qid: 0, name: "dom0", klass: "AdminVM" });
        expect(dom0!.uuid).toMatch(UUID);
        expect(dom0!.createdAt).toBeInstanceOf(Date);
        expect(store.vms.byName("dom0")?.qid).toBe(0);
        expect(store.vms.byUuid(dom0!.uuid)?.qid).toBe(0);
      });

      it("labels dom0 black, with no tags", () => {
        const dom0 = store.vms.byQid(0)!;
        expect(dom0.properties.label).toBe("black");
        expect(dom0.tags).toEqual([]);
        expect(store.vms.withLabel("black")).toEqual(["dom0"]);
      });

      it("holds no VM but dom0", () => {
        expect(names(store.vms.all())).toEqual(["dom0"]);
        expect(names(store.vms.list({}, "", 100))).toEqual(["dom0"]);
        expect(store.vms.count({})).toBe(1);
      });

      it("holds the eight built-in labels, red to black, with indexes 1 to 8", () => {
        expect(byIndex(store.labels.list())).toEqual(BUILTIN_LABELS);
      });

      it("holds no global property, no event and no remembered request", () => {
        expect(store.globals.all()).toEqual({});
        expect(store.events.latestSequence()).toBe(0);
        expect(store.events.oldestSequence()).toBe(1);
        expect(store.events.after(0, 100)).toEqual([]);
        expect(store.requests.find("any-request")).toBeUndefined();
      });
    });

    describe("VMs", () => {
      describe("insert and lookups", () => {
        it("find an inserted VM by qid, name and uuid, as inserted, with no properties or tags", () => {
          const vm = insert(1, "work", "StandaloneVM");
          for (const found of [store.vms.byQid(1), store.vms.byName("work"), store.vms.byUuid(vm.uuid)]) {
            expect(found).toMatchObject({ qid: 1, uuid: vm.uuid, name: "work", klass: "StandaloneVM", properties: {}, tags: [] });
            expect(found!.createdAt.getTime()).toBe(vm.createdAt.getTime());
            expect(typeof found!.revision).toBe("number");
          }
        });

        it("find nothing for a qid, name or uuid no VM has", () => {
          insert(1, "work");
          expect(store.vms.byQid(2)).toBeUndefined();
          expect(store.vms.byName("play")).toBeUndefined();
          expect(store.vms.byUuid(randomUUID())).toBeUndefined();
        });

        it("byName is exact; byNameAnyCase finds a name whatever the case of its letters", () => {
          insert(1, "Work");
          expect(store.vms.byName("work")).toBeUndefined();
          expect(store.vms.byNameAnyCase("work")?.name).toBe("Work");
          expect(store.vms.byNameAnyCase("WORK")?.qid).toBe(1);
          expect(store.vms.byNameAnyCase("play")).toBeUndefined();
        });

        it("all() gives every VM, dom0 included, by qid", () => {
          insert(3, "alpha");
          insert(1, "charlie");
          insert(2, "bravo");
          expect(store.vms.all().map((vm) => vm.qid)).toEqual([0, 1, 2, 3]);
        });
      });

      describe("nextQid()", () => {
        it("is 1 in a new store, then one past the VMs inserted from 1", () => {
          expect(store.vms.nextQid()).toBe(1);
          insert(1, "alpha");
          expect(store.vms.nextQid()).toBe(2);
          insert(2, "bravo");
          insert(3, "charlie");
          expect(store.vms.nextQid()).toBe(4);
        });

        it("is a qid not in use when VMs below the highest were removed", () => {
          for (const [qid, vmName] of [[1, "alpha"], [2, "bravo"], [3, "charlie"], [4, "delta"]] as const) insert(qid, vmName);
          store.vms.remove(3);
          store.vms.remove(2);
          const next = store.vms.nextQid();
          expect(next).toBeGreaterThan(0);
          expect(store.vms.byQid(next)).toBeUndefined();
        });

        it("passes over the qids skipped, to the lowest gap once past the last qid, and none is left: RESOURCE_EXHAUSTED", () => {
          insert(1, "alpha");
          expect(store.vms.nextQid((qid) => qid === 2 || qid === 3)).toBe(4);
          insert(65535, "last");
          expect(store.vms.nextQid()).toBe(2);
          expect(store.vms.nextQid((qid) => qid < 100)).toBe(100);
          expect(() => store.vms.nextQid((qid) => qid > 1)).toThrow(expect.objectContaining({ kind: "resource-exhausted", reason: "NO_FREE_QID" }) as Error);
        });

        it("is the highest qid again once the VM that had it was removed", () => {
          for (const [qid, vmName] of [[1, "alpha"], [2, "bravo"], [3, "charlie"]] as const) insert(qid, vmName);
          store.vms.remove(3);
          expect(store.vms.nextQid()).toBe(3);
        });
      });

      describe("list() and count()", () => {
        beforeEach(() => {
          insert(1, "fedora", "TemplateVM");
          insert(2, "work", "AppVM");
          insert(3, "bank", "AppVM");
          insert(4, "vault", "StandaloneVM");
          insert(5, "mail", "AppVM");
          store.vms.setProperty(2, "label", "blue");
          store.vms.setProperty(3, "label", "green");
          store.vms.setProperty(5, "label", "blue");
          store.vms.addTag(2, "office");
          store.vms.addTag(4, "office");
          store.vms.addTag(5, "office");
          store.vms.addTag(5, "mail");
        });

        it("lists every VM, dom0 included, ordered by name", () => {
          expect(names(store.vms.list({}, "", 100))).toEqual(["bank", "dom0", "fedora", "mail", "vault", "work"]);
        });

        it("selects by class", () => {
          expect(names(store.vms.list({ klass: "AppVM" }, "", 100))).toEqual(["bank", "mail", "work"]);
          expect(names(store.vms.list({ klass: "AdminVM" }, "", 100))).toEqual(["dom0"]);
          expect(store.vms.list({ klass: "DispVM" }, "", 100)).toEqual([]);
        });

        it("selects by tag", () => {
          expect(names(store.vms.list({ tag: "office" }, "", 100))).toEqual(["mail", "vault", "work"]);
          expect(store.vms.list({ tag: "nobody" }, "", 100)).toEqual([]);
        });

        it("selects by label, the VM's label property", () => {
          expect(names(store.vms.list({ label: "blue" }, "", 100))).toEqual(["mail", "work"]);
          expect(names(store.vms.list({ label: "black" }, "", 100))).toEqual(["dom0"]);
          expect(store.vms.list({ label: "red" }, "", 100)).toEqual([]);
        });

        it("selects by everything the filter gives at once", () => {
          expect(names(store.vms.list({ klass: "AppVM", tag: "office", label: "blue" }, "", 100))).toEqual(["mail", "work"]);
          expect(names(store.vms.list({ klass: "StandaloneVM", tag: "office" }, "", 100))).toEqual(["vault"]);
          expect(store.vms.list({ klass: "TemplateVM", tag: "office" }, "", 100)).toEqual([]);
        });

        it("starts after afterName, which need not be any VM's name", () => {
          expect(names(store.vms.list({}, "fedora", 100))).toEqual(["mail", "vault", "work"]);
          expect(names(store.vms.list({}, "g", 100))).toEqual(["mail", "vault", "work"]);
          expect(names(store.vms.list({ tag: "office" }, "mail", 100))).toEqual(["vault", "work"]);
          expect(store.vms.list({}, "work", 100)).toEqual([]);
        });

        it("gives at most limit VMs, the first by name", () => {
          expect(names(store.vms.list({}, "", 2))).toEqual(["bank", "dom0"]);
          expect(names(store.vms.list({ klass: "AppVM" }, "bank", 1))).toEqual(["mail"]);
        });

        it("pages through every VM when each page starts after the last name of the one before", () => {
          const seen: string[] = [];
          for (let page = store.vms.list({}, "", 2); page.length > 0; page = store.vms.list({}, page[page.length - 1].name, 2)) {
            expect(page.length).toBeLessThanOrEqual(2);
            seen.push(...names(page));
          }
          expect(seen).toEqual(["bank", "dom0", "fedora", "mail", "vault", "work"]);
        });

        it("lists a VM with its properties and tags", () => {
          const mail = store.vms.list({ tag: "mail" }, "", 100);
          expect(mail).toHaveLength(1);
          expect(mail[0]).toMatchObject({ qid: 5, name: "mail", properties: { label: "blue" } });
          expect(sorted(mail[0].tags)).toEqual(["mail", "office"]);
        });

        it("counts the VMs the filter selects, whatever a list's limit", () => {
          expect(store.vms.count({})).toBe(6);
          expect(store.vms.count({ klass: "AppVM" })).toBe(3);
          expect(store.vms.count({ tag: "office" })).toBe(3);
          expect(store.vms.count({ label: "blue" })).toBe(2);
          expect(store.vms.count({ klass: "AppVM", tag: "office", label: "blue" })).toBe(2);
          expect(store.vms.count({ klass: "DispVM" })).toBe(0);
        });
      });

      describe("properties", () => {
        beforeEach(() => {
          insert(1, "work");
          insert(2, "play");
        });

        it("setProperty sets one property of one VM, as text", () => {
          store.vms.setProperty(1, "memory", "800");
          store.vms.setProperty(1, "netvm", "2");
          expect(store.vms.byQid(1)!.properties).toEqual({ memory: "800", netvm: "2" });
          expect(store.vms.byQid(2)!.properties).toEqual({});
        });

        it("setProperty replaces a property already set", () => {
          store.vms.setProperty(1, "memory", "800");
          store.vms.setProperty(1, "memory", "1200");
          expect(store.vms.byName("work")!.properties).toEqual({ memory: "1200" });
        });

        it("deleteProperty forgets a set property and says true", () => {
          store.vms.setProperty(1, "memory", "800");
          store.vms.setProperty(1, "vcpus", "2");
          expect(store.vms.deleteProperty(1, "memory")).toBe(true);
          expect(store.vms.byQid(1)!.properties).toEqual({ vcpus: "2" });
        });

        it("deleteProperty says false when the property was not set, on this VM", () => {
          store.vms.setProperty(2, "memory", "800");
          expect(store.vms.deleteProperty(1, "memory")).toBe(false);
          expect(store.vms.deleteProperty(2, "memory")).toBe(true);
          expect(store.vms.deleteProperty(2, "memory")).toBe(false);
          expect(store.vms.byQid(2)!.properties).toEqual({});
        });

        it("anySets says whether any VM sets a property to exactly that value", () => {
          store.vms.setProperty(2, "ip", "10.137.0.9");
          expect(store.vms.anySets("ip", "10.137.0.9")).toBe(true);
          expect(store.vms.anySets("ip", "10.137.0.90")).toBe(false);
          expect(store.vms.anySets("ip6", "10.137.0.9")).toBe(false);
          store.vms.deleteProperty(2, "ip");
          expect(store.vms.anySets("ip", "10.137.0.9")).toBe(false);
        });
      });

      describe("tags", () => {
        beforeEach(() => {
          insert(1, "work");
          insert(2, "play");
        });

        it("addTag adds a tag and says true; false when the VM had it", () => {
          expect(store.vms.addTag(1, "office")).toBe(true);
          expect(store.vms.addTag(1, "mail")).toBe(true);
          expect(store.vms.addTag(1, "office")).toBe(false);
          expect(sorted(store.vms.byQid(1)!.tags)).toEqual(["mail", "office"]);
          expect(store.vms.byQid(2)!.tags).toEqual([]);
        });

        it("removeTag removes a tag and says true; false when the VM did not have it", () => {
          store.vms.addTag(1, "office");
          store.vms.addTag(2, "mail");
          expect(store.vms.removeTag(1, "mail")).toBe(false);
          expect(store.vms.removeTag(1, "office")).toBe(true);
          expect(store.vms.removeTag(1, "office")).toBe(false);
          expect(store.vms.byQid(1)!.tags).toEqual([]);
          expect(store.vms.byQid(2)!.tags).toEqual(["mail"]);
        });
      });

      describe("rename()", () => {
        it("gives the VM the new name: found by it, not by the old one, with its qid, uuid, properties and tags", () => {
          const vm = insert(1, "work");
          store.vms.setProperty(1, "memory", "800");
          store.vms.addTag(1, "office");
          store.vms.rename(1, "job");
          expect(store.vms.byName("work")).toBeUndefined();
          expect(store.vms.byName("job")).toMatchObject({ qid: 1, uuid: vm.uuid, name: "job", properties: { memory: "800" }, tags: ["office"] });
          expect(store.vms.byQid(1)!.name).toBe("job");
          expect(store.vms.byUuid(vm.uuid)!.name).toBe("job");
        });

        it("moves the VM to its new place in the order of names", () => {
          insert(1, "alpha");
          insert(2, "bravo");
          store.vms.rename(1, "zulu");
          expect(names(store.vms.list({}, "", 100))).toEqual(["bravo", "dom0", "zulu"]);
          expect(names(store.vms.list({}, "dom0", 100))).toEqual(["zulu"]);
        });
      });

      describe("features", () => {
        beforeEach(() => {
          insert(1, "work");
          insert(2, "play");
          insert(3, "idle");
        });

        it("are none for a VM that has none", () => {
          expect(store.vms.features(1)).toEqual({});
          expect(store.vms.features(0)).toEqual({});
        });

        it("setFeature sets one feature of one VM, or replaces it", () => {
          store.vms.setFeature(1, "gui", "1");
          store.vms.setFeature(1, "qrexec", "1");
          store.vms.setFeature(1, "gui", "");
          expect(store.vms.features(1)).toEqual({ gui: "", qrexec: "1" });
          expect(store.vms.features(2)).toEqual({});
        });

        it("removeFeature removes a feature and says true; false when it was not set", () => {
          store.vms.setFeature(1, "gui", "1");
          store.vms.setFeature(2, "qrexec", "1");
          expect(store.vms.removeFeature(1, "qrexec")).toBe(false);
          expect(store.vms.removeFeature(1, "gui")).toBe(true);
          expect(store.vms.removeFeature(1, "gui")).toBe(false);
          expect(store.vms.features(1)).toEqual({});
          expect(store.vms.features(2)).toEqual({ qrexec: "1" });
        });

        it("featuresOf gives each VM asked for its features, {} for one with none", () => {
          store.vms.setFeature(1, "gui", "1");
          store.vms.setFeature(1, "qrexec", "0");
          store.vms.setFeature(2, "gui", "0");
          const features = store.vms.featuresOf([2, 3, 1]);
          expect(features).toEqual(
            new Map([
              [2, { gui: "0" }],
              [3, {}],
              [1, { gui: "1", qrexec: "0" }],
            ]),
          );
        });

        it("featuresOf gives an empty map for no VM", () => {
          store.vms.setFeature(1, "gui", "1");
          expect(store.vms.featuresOf([]).size).toBe(0);
        });
      });

      describe("notes", () => {
        beforeEach(() => {
          insert(1, "work");
          insert(2, "play");
        });

        it("are empty for a VM that has none", () => {
          expect(store.vms.notes(1)).toBe("");
        });

        it("setNotes sets or replaces the notes of one VM", () => {
          store.vms.setNotes(1, "first line\nsecond line");
          expect(store.vms.notes(1)).toBe("first line\nsecond line");
          store.vms.setNotes(1, "other");
          expect(store.vms.notes(1)).toBe("other");
          expect(store.vms.notes(2)).toBe("");
        });

        it("setNotes with empty text leaves the VM with empty notes", () => {
          store.vms.setNotes(1, "something");
          store.vms.setNotes(1, "");
          expect(store.vms.notes(1)).toBe("");
        });
      });

      describe("referencesTo()", () => {
        beforeEach(() => {
          insert(1, "fedora", "TemplateVM");
          insert(2, "sys-net", "AppVM");
          insert(3, "work", "AppVM");
          insert(4, "play", "AppVM");
          insert(11, "other", "TemplateVM");
          store.vms.setProperty(2, "template", "1");
          store.vms.setProperty(3, "template", "1");
          store.vms.setProperty(3, "netvm", "2");
          store.vms.setProperty(4, "template", "11");
          store.vms.setProperty(4, "netvm", "2");
          store.vms.setProperty(4, "default_dispvm", "1");
          store.vms.setProperty(4, "kernelopts", "1");
        });

        const byVmAndProperty = (refs: { vm: string; property: string }[]) =>
          [...refs].sort((a, b) => a.vm.localeCompare(b.vm) || a.property.localeCompare(b.property));

        it("gives the VMs and properties, among those named, whose value is the VM's qid", () => {
          expect(byVmAndProperty(store.vms.referencesTo(1, ["template", "netvm", "default_dispvm"]))).toEqual([
            { vm: "play", property: "default_dispvm" },
            { vm: "sys-net", property: "template" },
            { vm: "work", property: "template" },
          ]);
          expect(byVmAndProperty(store.vms.referencesTo(2, ["template", "netvm", "default_dispvm"]))).toEqual([
            { vm: "play", property: "netvm" },
            { vm: "work", property: "netvm" },
          ]);
        });

        it("looks at the properties named only, and at whole values only", () => {
          expect(store.vms.referencesTo(1, ["netvm"])).toEqual([]);
          expect(store.vms.referencesTo(1, [])).toEqual([]);
          expect(store.vms.referencesTo(11, ["template", "netvm", "default_dispvm"])).toEqual([{ vm: "play", property: "template" }]);
          expect(store.vms.referencesTo(3, ["template", "netvm", "default_dispvm"])).toEqual([]);
        });
      });

      describe("withLabel()", () => {
        it("gives the names of the VMs whose label property is the label", () => {
          insert(1, "work");
          insert(2, "play");
          insert(3, "bank");
          store.vms.setProperty(1, "label", "blue");
          store.vms.setProperty(2, "label", "red");
          store.vms.setProperty(3, "label", "blue");
          store.vms.setProperty(2, "netvm", "blue");
          expect(sorted(store.vms.withLabel("blue"))).toEqual(["bank", "work"]);
          expect(store.vms.withLabel("red")).toEqual(["play"]);
          expect(store.vms.withLabel("purple")).toEqual([]);
        });
      });

      describe("remove()", () => {
        it("drops the VM: found by no qid, name or uuid, nor listed or counted", () => {
          const vm = insert(1, "work");
          insert(2, "play");
          store.vms.remove(1);
          expect(store.vms.byQid(1)).toBeUndefined();
          expect(store.vms.byName("work")).toBeUndefined();
          expect(store.vms.byUuid(vm.uuid)).toBeUndefined();
          expect(names(store.vms.all())).toEqual(["dom0", "play"]);
          expect(names(store.vms.list({}, "", 100))).toEqual(["dom0", "play"]);
          expect(store.vms.count({ klass: "AppVM" })).toBe(1);
        });

        it("drops its properties, tags, features and notes with it", () => {
          insert(1, "work");
          store.vms.setProperty(1, "label", "blue");
          store.vms.setProperty(1, "netvm", "2");
          store.vms.addTag(1, "office");
          store.vms.setFeature(1, "gui", "1");
          store.vms.setNotes(1, "notes");
          store.vms.remove(1);

          expect(store.vms.withLabel("blue")).toEqual([]);
          expect(store.vms.referencesTo(2, ["netvm"])).toEqual([]);
          expect(store.vms.list({ tag: "office" }, "", 100)).toEqual([]);
          expect(store.vms.count({ label: "blue" })).toBe(0);

          // A VM that takes the qid later starts with none of them.
          const again = insert(1, "again");
          expect(store.vms.byQid(1)).toMatchObject({ uuid: again.uuid, name: "again", properties: {}, tags: [] });
          expect(store.vms.features(1)).toEqual({});
          expect(store.vms.featuresOf([1]).get(1)).toEqual({});
          expect(store.vms.notes(1)).toBe("");
        });

        it("leaves the other VMs as they were", () => {
          insert(1, "work");
          insert(2, "play");
          store.vms.setProperty(2, "memory", "800");
          store.vms.addTag(2, "office");
          store.vms.setFeature(2, "gui", "1");
          store.vms.setNotes(2, "notes");
          const before = store.vms.byQid(2)!;
          store.vms.remove(1);
          expect(store.vms.byQid(2)).toMatchObject({ properties: { memory: "800" }, tags: ["office"], revision: before.revision });
          expect(store.vms.features(2)).toEqual({ gui: "1" });
          expect(store.vms.notes(2)).toBe("notes");
        });
      });
    });

    describe("VM records", () => {
      beforeEach(() => {
        insert(1, "work");
        insert(2, "play");
        store.vms.setProperty(1, "memory", "800");
        store.vms.addTag(1, "blue");
        store.vms.setFeature(1, "gui", "1");
      });

      it("have the same revision when read again with no write between, however read", () => {
        const first = store.vms.byQid(1)!;
        const reads = [
          store.vms.byQid(1)!,
          store.vms.byName("work")!,
          store.vms.byUuid(first.uuid)!,
          store.vms.list({}, "", 100).find((vm) => vm.qid === 1)!,
          store.vms.all().find((vm) => vm.qid === 1)!,
        ];
        for (const read of reads) expect(read.revision).toBe(first.revision);
      });

      it.each<[string, () => unknown]>([
        ["a property set", () => store.vms.setProperty(1, "vcpus", "2")],
        ["a property replaced", () => store.vms.setProperty(1, "memory", "1200")],
        ["a property deleted", () => store.vms.deleteProperty(1, "memory")],
        ["a tag added", () => store.vms.addTag(1, "green")],
        ["a tag removed", () => store.vms.removeTag(1, "blue")],
        ["a feature set", () => store.vms.setFeature(1, "qrexec", "1")],
        ["a feature replaced", () => store.vms.setFeature(1, "gui", "0")],
        ["a feature removed", () => store.vms.removeFeature(1, "gui")],
        ["a rename", () => store.vms.rename(1, "job")],
      ])("get a new revision with %s, and were last written then", (_, write) => {
        const before = revisionOf(1);
        const writtenFrom = Date.now();
        write();
        const writtenBy = Date.now();
        const after = revisionOf(1);
        expect(after).not.toBe(before);
        const updatedAt = store.vms.byQid(1)!.updatedAt.getTime();
        expect(updatedAt).toBeGreaterThanOrEqual(writtenFrom);
        expect(updatedAt).toBeLessThanOrEqual(writtenBy);
        // And they hold until the next write.
        expect(revisionOf(1)).toBe(after);
        expect(store.vms.byQid(1)!.updatedAt.getTime()).toBe(updatedAt);
      });

      it("were last written when they were made, until a write", () => {
        const made = insert(4, "fresh");
        expect(store.vms.byQid(4)!.updatedAt).toEqual(made.createdAt);
        expect(store.vms.byQid(4)!.createdAt).toEqual(made.createdAt);
      });

      it("keep their revision through writes to anything but the VM: other VMs, notes, globals, labels, events, requests", () => {
        const before = revisionOf(1);
        const updatedBefore = store.vms.byQid(1)!.updatedAt;
        store.vms.setProperty(2, "memory", "900");
        store.vms.addTag(2, "blue");
        store.vms.setFeature(2, "gui", "1");
        store.vms.rename(2, "fun");
        insert(3, "new");
        store.vms.remove(3);
        store.vms.setNotes(1, "notes are not part of the record");
        store.globals.set("default_netvm", "2");
        store.labels.insert({ name: "pink", color: 0xff00ff, index: store.labels.nextIndex(), builtin: false });
        appendCommitted(event("domain-feature-set:gui", "play"));
        store.requests.remember("request-1", { rpc: "CreateVm", request: "{}", result: "uuid", time: EVENT_TIME });
        expect(revisionOf(1)).toBe(before);
        expect(store.vms.byQid(1)!.updatedAt).toEqual(updatedBefore);
      });

      it("keep their revision through calls that change nothing", () => {
        const before = revisionOf(1);
        expect(store.vms.addTag(1, "blue")).toBe(false);
        expect(store.vms.removeTag(1, "green")).toBe(false);
        expect(store.vms.deleteProperty(1, "vcpus")).toBe(false);
        expect(store.vms.removeFeature(1, "qrexec")).toBe(false);
        expect(revisionOf(1)).toBe(before);
      });

      it("never get again, for other contents, a revision seen inside a transaction that rolled back", () => {
        let rolledBack = 0;
        thrownBy(() =>
          store.transaction(() => {
            store.vms.setProperty(1, "memory", "1200");
            rolledBack = revisionOf(1);
            throw new Error("rolled back on purpose");
          }),
        );
        store.vms.setProperty(1, "memory", "1600");
        expect(store.vms.byQid(1)!.properties.memory).toBe("1600");
        expect(revisionOf(1)).not.toBe(rolledBack);
      });

      it("stay as they were read after writes to their VM: readers keep what they read", () => {
        const read = store.vms.byQid(1)!;
        const snapshot = { ...read, properties: { ...read.properties }, tags: [...read.tags] };
        store.vms.setProperty(1, "memory", "1200");
        store.vms.setProperty(1, "vcpus", "2");
        store.vms.addTag(1, "green");
        store.vms.removeTag(1, "blue");
        store.vms.rename(1, "job");
        expect(read).toEqual(snapshot);
        expect(store.vms.byQid(1)).toMatchObject({ name: "job", properties: { memory: "1200", vcpus: "2" }, tags: ["green"] });
      });

      it("stay as they were read after their VM is removed", () => {
        const read = store.vms.byQid(1)!;
        const snapshot = { ...read, properties: { ...read.properties }, tags: [...read.tags] };
        store.vms.remove(1);
        expect(read).toEqual(snapshot);
      });

      it("cannot change what the store holds when a caller changes them", () => {
        const read = store.vms.byQid(1)!;
        attempt(() => ((read.properties as Record<string, string>).memory = "1"));
        attempt(() => ((read.properties as Record<string, string>).netvm = "2"));
        attempt(() => (read.tags as string[]).push("red"));
        attempt(() => ((read as { name: string }).name = "other"));
        const again = store.vms.byQid(1)!;
        expect(again).toMatchObject({ name: "work", properties: { memory: "800" }, tags: ["blue"] });
        expect(again.properties).not.toHaveProperty("netvm");
        expect(store.vms.byName("work")?.qid).toBe(1);
        expect(store.vms.withLabel("red")).toEqual([]);
      });

      it("read inside a transaction that rolled back are not what is read after it", () => {
        thrownBy(() =>
          store.transaction(() => {
            store.vms.setProperty(1, "memory", "1200");
            store.vms.addTag(1, "green");
            store.vms.rename(1, "job");
            expect(store.vms.byQid(1)).toMatchObject({ name: "job", properties: { memory: "1200" } });
            expect(store.vms.byName("job")?.qid).toBe(1);
            throw new Error("rolled back on purpose");
          }),
        );
        expect(store.vms.byQid(1)).toMatchObject({ name: "work", properties: { memory: "800" }, tags: ["blue"] });
        expect(store.vms.byName("job")).toBeUndefined();
        expect(store.vms.list({}, "", 100).find((vm) => vm.qid === 1)).toMatchObject({ name: "work", properties: { memory: "800" } });
      });

      it("of a VM inserted again after its insertion rolled back are as inserted the second time", () => {
        const identity = { qid: 5, uuid: randomUUID() };
        thrownBy(() =>
          store.transaction(() => {
            store.vms.insert({ ...identity, name: "first", klass: "AppVM", createdAt: new Date(Date.UTC(2024, 0, 1)) });
            expect(store.vms.byQid(5)?.name).toBe("first");
            throw new Error("rolled back on purpose");
          }),
        );
        expect(store.vms.byQid(5)).toBeUndefined();
        store.vms.insert({ ...identity, name: "second", klass: "StandaloneVM", createdAt: new Date(Date.UTC(2024, 0, 2)) });
        expect(store.vms.byQid(5)).toMatchObject({ name: "second", klass: "StandaloneVM" });
        expect(store.vms.byQid(5)!.createdAt.getTime()).toBe(Date.UTC(2024, 0, 2));
      });
    });

    describe("labels", () => {
      const pink: LabelRecord = { name: "pink", color: 0xff69b4, index: 9, builtin: false };

      it("get gives a label by name; undefined for a name no label has", () => {
        expect(store.labels.get("blue")).toEqual({ name: "blue", color: 0x3465a4, index: 6, builtin: true });
        expect(store.labels.get("pink")).toBeUndefined();
      });

      it("insert adds a label that get and list then give", () => {
        store.labels.insert(pink);
        expect(store.labels.get("pink")).toEqual(pink);
        expect(byIndex(store.labels.list())).toEqual([...BUILTIN_LABELS, pink]);
      });

      it("remove drops a label, and only it", () => {
        store.labels.insert(pink);
        store.labels.remove("pink");
        expect(store.labels.get("pink")).toBeUndefined();
        expect(byIndex(store.labels.list())).toEqual(BUILTIN_LABELS);
      });

      it("nextIndex is an index no label has, past every label's", () => {
        expect(store.labels.nextIndex()).toBeGreaterThan(8);
        const index = store.labels.nextIndex();
        store.labels.insert({ ...pink, index });
        const next = store.labels.nextIndex();
        expect(next).toBeGreaterThan(index);
        expect(store.labels.list().map((label) => label.index)).not.toContain(next);
      });
    });

    describe("pools", () => {
      const fast: PoolRecord = {
        name: "fast",
        driver: "file-reflink",
        parameters: { dir_path: "/srv/fast" },
        revisionsToKeep: 2,
        ephemeralVolatile: true,
        limitBytes: 0,
        createdAt: new Date("2024-05-06T07:08:09.123Z"),
      };

      it("a new store has none", () => {
        expect(store.pools.list()).toEqual([]);
        expect(store.pools.get("fast")).toBeUndefined();
      });

      it("insert adds a pool that get and list give as it was, by name", () => {
        const archive = { ...fast, name: "archive", driver: "file", parameters: {} };
        store.pools.insert(fast);
        store.pools.insert(archive);
        expect(store.pools.get("fast")).toEqual(fast);
        expect(store.pools.list()).toEqual([archive, fast]);
      });

      it("update writes the settings that may change, and nothing else", () => {
        store.pools.insert(fast);
        store.pools.update("fast", { revisionsToKeep: 0, ephemeralVolatile: false, limitBytes: 2 ** 40 });
        expect(store.pools.get("fast")).toEqual({ ...fast, revisionsToKeep: 0, ephemeralVolatile: false, limitBytes: 2 ** 40 });
      });

      it("remove drops a pool, and only it", () => {
        store.pools.insert(fast);
        store.pools.insert({ ...fast, name: "other" });
        store.pools.remove("fast");
        expect(store.pools.list().map((pool) => pool.name)).toEqual(["other"]);
      });
    });

    describe("volumes", () => {
      const disk: VolumeRecord = {
        pool: "fast",
        vid: "disks/data",
        vmQid: undefined,
        name: "",
        format: "qcow2",
        rw: true,
        snapOnStart: false,
        saveOnStop: true,
        source: "",
        sourceStamp: "",
        revisionsToKeep: undefined,
        ephemeral: false,
        limitBytes: 0,
        internal: false,
        state: "ready",
        createdAt: new Date("2024-05-06T07:08:09.123Z"),
      };

      beforeEach(() => {
        store.pools.insert({ name: "fast", driver: "file", parameters: {}, revisionsToKeep: 1, ephemeralVolatile: false, limitBytes: 0, createdAt: new Date() });
      });

      it("insert adds a volume that get gives as it was, a VM's included", () => {
        insert(7, "work");
        const owned: VolumeRecord = { ...disk, vid: "appvms/work/private", vmQid: 7, name: "private", revisionsToKeep: 2, state: "creating" };
        store.volumes.insert(disk);
        store.volumes.insert(owned);
        expect(store.volumes.get("fast", "disks/data")).toEqual(disk);
        expect(store.volumes.get("fast", "appvms/work/private")).toEqual(owned);
        expect(store.volumes.get("fast", "nothing")).toBeUndefined();
        expect(store.volumes.ofVm(7)).toEqual([owned]);
        expect(store.volumes.unsettled()).toEqual([owned]);
      });

      it("inPool pages a pool's volumes by vid; countInPool counts them all", () => {
        for (const vid of ["c", "a", "b"]) store.volumes.insert({ ...disk, vid });
        expect(store.volumes.inPool("fast", "", 2).map((volume) => volume.vid)).toEqual(["a", "b"]);
        expect(store.volumes.inPool("fast", "b", 10).map((volume) => volume.vid)).toEqual(["c"]);
        expect(store.volumes.countInPool("fast")).toBe(3);
      });

      it("update writes every field but the names; remove drops the volume", () => {
        store.volumes.insert(disk);
        const changed: VolumeRecord = { ...disk, rw: false, revisionsToKeep: 0, limitBytes: 2 ** 40, state: "deleting", source: "fast:tpl/root", sourceStamp: "1:2:3" };
        store.volumes.update(changed);
        expect(store.volumes.get("fast", "disks/data")).toEqual(changed);
        store.volumes.remove("fast", "disks/data");
        expect(store.volumes.get("fast", "disks/data")).toBeUndefined();
      });
    });

    describe("volume attachments", () => {
      const volume = (vid: string): VolumeRecord => ({
        pool: "fast", vid, vmQid: undefined, name: "", format: "raw", rw: true, snapOnStart: false, saveOnStop: true, source: "", sourceStamp: "",
        revisionsToKeep: undefined, ephemeral: false, limitBytes: 0, internal: false, state: "ready", createdAt: new Date("2024-05-06T07:08:09.123Z"),
      });

      beforeEach(() => {
        store.pools.insert({ name: "fast", driver: "file", parameters: {}, revisionsToKeep: 1, ephemeralVolatile: false, limitBytes: 0, createdAt: new Date() });
        for (const vid of ["a", "b"]) store.volumes.insert(volume(vid));
        insert(7, "work");
        insert(8, "other");
      });

      it("ofVm gives a VM's attachments by order, then name; ofVolume the VMs a volume is attached to", () => {
        store.attachments.insert({ vmQid: 7, name: "zeta", pool: "fast", vid: "a", rw: true, order: 0 });
        store.attachments.insert({ vmQid: 7, name: "data", pool: "fast", vid: "b", rw: false, order: 1 });
        store.attachments.insert({ vmQid: 8, name: "shared", pool: "fast", vid: "b", rw: false, order: 0 });
        expect(store.attachments.ofVm(7).map((a) => a.name)).toEqual(["zeta", "data"]);
        expect(store.attachments.ofVm(7)[1]).toEqual({ vmQid: 7, name: "data", pool: "fast", vid: "b", rw: false, order: 1 });
        expect(store.attachments.ofVolume("fast", "b").map((a) => [a.vmQid, a.name])).toEqual([
          [7, "data"],
          [8, "shared"],
        ]);
        store.attachments.remove(7, "data");
        expect(store.attachments.ofVolume("fast", "b").map((a) => a.vmQid)).toEqual([8]);
      });

      it("go with their VM and with their volume", () => {
        store.attachments.insert({ vmQid: 7, name: "data", pool: "fast", vid: "a", rw: true, order: 0 });
        store.attachments.insert({ vmQid: 8, name: "data", pool: "fast", vid: "b", rw: true, order: 0 });
        store.vms.remove(7);
        store.volumes.remove("fast", "b");
        expect([store.attachments.ofVm(7), store.attachments.ofVm(8)]).toEqual([[], []]);
      });
    });

    describe("global properties", () => {
      it("set sets a property, or replaces it; all gives every one set", () => {
        store.globals.set("default_netvm", "2");
        store.globals.set("default_template", "1");
        store.globals.set("default_netvm", "3");
        expect(store.globals.all()).toEqual({ default_netvm: "3", default_template: "1" });
      });

      it("delete forgets a property and says true; false when it was not set", () => {
        store.globals.set("default_netvm", "2");
        store.globals.set("default_template", "1");
        expect(store.globals.delete("default_kernel")).toBe(false);
        expect(store.globals.delete("default_netvm")).toBe(true);
        expect(store.globals.delete("default_netvm")).toBe(false);
        expect(store.globals.all()).toEqual({ default_template: "1" });
      });
    });

    describe("events", () => {
      it("are appended only within a transaction: outside one, append throws and appends nothing", () => {
        expect(() => store.events.append(event("domain-add", "work"), EVENT_TIME)).toThrow();
        expect(store.events.latestSequence()).toBe(0);
        expect(store.events.after(0, 100)).toEqual([]);
      });

      it("are numbered one after another, from 1, across transactions", () => {
        expect(appendCommitted(event("a"), event("b"), event("c"))).toEqual([1, 2, 3]);
        expect(appendCommitted(event("d"))).toEqual([4]);
        expect(store.events.latestSequence()).toBe(4);
        expect(store.events.oldestSequence()).toBe(1);
      });

      it("uuidOfSubject() names the VM that the retained events last knew by a name", () => {
        appendCommitted(event("domain-add", "work"));
        expect(store.events.uuidOfSubject("work")).toBe(uuidOf("work"));
        appendCommitted({ subject: "work", subjectUuid: "second-work", name: "domain-add", kwargs: {} });
        appendCommitted(event("label-add"));
        expect(store.events.uuidOfSubject("work")).toBe("second-work");
        expect(store.events.uuidOfSubject("other")).toBeUndefined();
      });

      it("namesUuid() says whether a retained event is about the VM of a uuid", () => {
        appendCommitted(event("domain-add", "work"));
        expect(store.events.namesUuid(uuidOf("work"))).toBe(true);
        expect(store.events.namesUuid("6f1c9d2a-3b4e-4c5d-8e6f-7a8b9c0d1e2f")).toBe(false);
      });

      it("uuidOfSubject() up to an event names the VM that had the name then", () => {
        appendCommitted(event("domain-add", "work"));
        const then = store.events.latestSequence();
        appendCommitted({ subject: "work", subjectUuid: "second-work", name: "domain-add", kwargs: {} });
        expect(store.events.uuidOfSubject("work", then)).toBe(uuidOf("work"));
        expect(store.events.uuidOfSubject("work")).toBe("second-work");
        expect(store.events.uuidOfSubject("work", then - 1)).toBeUndefined();
      });

      it("namesSubject() says whether a retained event is about a subject, until it is trimmed", () => {
        appendCommitted(event("domain-add", "disp42"));
        appendCommitted(event("domain-add", "work"));
        expect([store.events.namesSubject("disp42"), store.events.namesSubject("work"), store.events.namesSubject("disp43")]).toEqual([true, true, false]);
        store.events.trim(1);
        expect([store.events.namesSubject("disp42"), store.events.namesSubject("work")]).toEqual([false, true]);
      });

      it("after() gives the events after a sequence number, in order, up to limit, as appended", () => {
        appendCommitted(event("domain-add", "work", { vm: "work" }), event("property-set:memory", "work", { name: "memory", newvalue: "800" }));
        appendCommitted(event("label-add", "", { label: "pink" }));
        expect(store.events.after(0, 100)).toEqual<StoredEvent[]>([
          { sequence: 1, time: EVENT_TIME, subject: "work", subjectUuid: uuidOf("work"), name: "domain-add", kwargs: { vm: "work" } },
          { sequence: 2, time: EVENT_TIME, subject: "work", subjectUuid: uuidOf("work"), name: "property-set:memory", kwargs: { name: "memory", newvalue: "800" } },
          { sequence: 3, time: EVENT_TIME, subject: "", subjectUuid: "", name: "label-add", kwargs: { label: "pink" } },
        ]);
        expect(store.events.after(1, 1).map((e) => e.sequence)).toEqual([2]);
        expect(store.events.after(1, 100).map((e) => e.sequence)).toEqual([2, 3]);
        expect(store.events.after(3, 100)).toEqual([]);
      });

      it("trim(keep) keeps only the latest keep events", () => {
        appendCommitted(event("a"), event("b"), event("c"), event("d"), event("e"));
        store.events.trim(2);
        expect(store.events.oldestSequence()).toBe(4);
        expect(store.events.latestSequence()).toBe(5);
        expect(store.events.after(0, 100).map((e) => e.name)).toEqual(["d", "e"]);
      });

      it("trim keeps every event when there are no more than keep", () => {
        appendCommitted(event("a"), event("b"));
        store.events.trim(2);
        store.events.trim(10);
        expect(store.events.oldestSequence()).toBe(1);
        expect(store.events.after(0, 100).map((e) => e.name)).toEqual(["a", "b"]);
      });

      it("trim(0) keeps none: oldestSequence is then latestSequence + 1", () => {
        appendCommitted(event("a"), event("b"), event("c"));
        store.events.trim(0);
        expect(store.events.after(0, 100)).toEqual([]);
        expect(store.events.latestSequence()).toBe(3);
        expect(store.events.oldestSequence()).toBe(4);
      });

      it("go on from the latest sequence number after a trim: it never goes back", () => {
        appendCommitted(event("a"), event("b"), event("c"));
        store.events.trim(0);
        expect(appendCommitted(event("d"))).toEqual([4]);
        store.events.trim(1);
        expect(store.events.latestSequence()).toBe(4);
        expect(store.events.oldestSequence()).toBe(4);
        expect(store.events.after(0, 100).map((e) => e.name)).toEqual(["d"]);
      });

      it("of a rolled-back transaction leave no gap: the next committed event takes the number they had", () => {
        appendCommitted(event("a"));
        thrownBy(() =>
          store.transaction(() => {
            expect(store.events.append(event("lost"), EVENT_TIME)).toBe(2);
            throw new Error("rolled back on purpose");
          }),
        );
        expect(store.events.latestSequence()).toBe(1);
        expect(appendCommitted(event("b"))).toEqual([2]);
        expect(store.events.after(0, 100).map((e) => e.name)).toEqual(["a", "b"]);
      });
    });

    describe("requests", () => {
      it("find gives what remember stored for the request id; undefined for an id never remembered", () => {
        const first = { rpc: "CreateVm", request: '{"name":"a"}', result: "c0ffee00-0000-4000-8000-000000000001", time: EVENT_TIME };
        const second = { rpc: "CloneVm", request: '{"vm":"a"}', result: "c0ffee00-0000-4000-8000-000000000002", time: EVENT_TIME };
        store.requests.remember("request-1", first);
        store.requests.remember("request-2", second);
        expect(store.requests.find("request-1")).toEqual(first);
        expect(store.requests.find("request-2")).toEqual(second);
        expect(store.requests.find("request-3")).toBeUndefined();
      });

      it("forgetBefore forgets what was remembered before a time, and only that", () => {
        const remembered = (time: Date) => ({ rpc: "CreateVm", request: "{}", result: "r", time });
        store.requests.remember("old", remembered(new Date(Date.UTC(2024, 0, 1))));
        store.requests.remember("new", remembered(new Date(Date.UTC(2024, 0, 3))));
        store.requests.forgetBefore(new Date(Date.UTC(2024, 0, 2)));
        expect(store.requests.find("old")).toBeUndefined();
        expect(store.requests.find("new")).toBeDefined();
      });
    });

    describe("running VMs", () => {
      it("keeps the marks of running VMs, then of halted ones waiting to be settled, until settled", () => {
        insert(1, "alpha");
        insert(2, "bravo");
        const started = new Date(Date.UTC(2026, 0, 1, 12));
        expect(store.runtime.running()).toEqual([]);
        store.runtime.markRunning(1, started);
        store.runtime.markRunning(2, started);
        store.runtime.markSettling(2);
        expect(store.runtime.running()).toEqual([
          { qid: 1, startedAt: started, settling: false },
          { qid: 2, startedAt: started, settling: true },
        ]);
        store.runtime.markHalted(2);
        store.runtime.markHalted(2); // nothing, the second time
        expect(store.runtime.running()).toEqual([{ qid: 1, startedAt: started, settling: false }]);
        // Started again: running, not settling.
        store.runtime.markSettling(1);
        store.runtime.markRunning(1, started);
        expect(store.runtime.running()).toEqual([{ qid: 1, startedAt: started, settling: false }]);
      });

      it("drops a VM's mark with the VM, and does not change its revision", () => {
        insert(1, "alpha");
        const revision = store.vms.byQid(1)!.revision;
        store.runtime.markRunning(1, new Date());
        expect(store.vms.byQid(1)!.revision).toBe(revision);
        store.vms.remove(1);
        expect(store.runtime.running()).toEqual([]);
      });
    });

    describe("operations", () => {
      const operation = (n: number, fields: Partial<OperationRecord> = {}): OperationRecord => ({
        name: `operations/00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
        kind: "clone-vm",
        method: "steward.v1.VmService/CloneVm",
        target: "work",
        targetUuid: "3f0c5a0e-6b1f-4d7e-9a43-0b8d7c1e2f10",
        caller: "dom0",
        createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, n)),
        endedAt: undefined,
        progress: { done: 0, total: 3, unit: "steps" },
        cancelRequested: false,
        outcome: "running",
        result: undefined,
        error: undefined,
        ...fields,
      });

      it("keep what is put, written again whole as the operation goes on", () => {
        const op = operation(1);
        store.operations.put(op);
        expect(store.operations.get(op.name)).toEqual(op);
        const ended = { ...op, target: "copy", targetUuid: "", progress: { done: 3, total: 3, unit: "steps" as const }, outcome: "succeeded" as const, endedAt: new Date(Date.UTC(2026, 0, 1, 0, 1)), result: { type: "steward.v1.CloneVmResponse", bytes: new Uint8Array([10, 0, 255]) } };
        store.operations.put(ended);
        expect(store.operations.get(op.name)).toEqual(ended);
        const failed = { ...operation(2), outcome: "failed" as const, endedAt: new Date(), cancelRequested: true, error: { kind: "not-found" as const, reason: "VM_NOT_FOUND", message: "no VM", metadata: { vm: "x" } } };
        store.operations.put(failed);
        expect(store.operations.get(failed.name)).toEqual(failed);
        expect(store.operations.get(operation(3).name)).toBeUndefined();
      });

      it("list the newest first, by filter, from a position", () => {
        for (let n = 1; n <= 4; n++) store.operations.put(operation(n, { kind: n % 2 ? "clone-vm" : "create-vm", outcome: n === 4 ? "running" : "succeeded", target: `vm${n}` }));
        const names = (ops: OperationRecord[]) => ops.map((op) => op.name);
        expect(names(store.operations.list({}, undefined, 10))).toEqual([4, 3, 2, 1].map((n) => operation(n).name));
        expect(names(store.operations.list({}, undefined, 2))).toEqual([4, 3].map((n) => operation(n).name));
        expect(names(store.operations.list({}, { createdAt: operation(3).createdAt, name: operation(3).name }, 10))).toEqual([2, 1].map((n) => operation(n).name));
        expect(names(store.operations.list({ kind: "clone-vm" }, undefined, 10))).toEqual([3, 1].map((n) => operation(n).name));
        expect(names(store.operations.list({ done: false }, undefined, 10))).toEqual([operation(4).name]);
        expect(names(store.operations.list({ done: true, target: "vm2" }, undefined, 10))).toEqual([operation(2).name]);
      });

      it("forget the ended ones before a time, never a running one, and one deleted", () => {
        store.operations.put(operation(1, { outcome: "succeeded", endedAt: new Date(Date.UTC(2026, 0, 1)) }));
        store.operations.put(operation(2, { outcome: "failed", endedAt: new Date(Date.UTC(2026, 0, 3)) }));
        store.operations.put(operation(3));
        store.operations.forgetEndedBefore(new Date(Date.UTC(2026, 0, 2)));
        expect(store.operations.list({}, undefined, 10).map((op) => op.name)).toEqual([operation(3).name, operation(2).name]);
        expect(store.operations.delete(operation(2).name)).toBe(true);
        expect(store.operations.delete(operation(2).name)).toBe(false);
        expect(store.operations.get(operation(2).name)).toBeUndefined();
      });
    });

    describe("transaction()", () => {
      const failure = new Error("rolled back on purpose");

      it("returns what its work returns, with its writes committed", () => {
        const result = store.transaction(() => {
          insert(1, "work");
          store.vms.setProperty(1, "memory", "800");
          return store.events.append(event("domain-add", "work"), EVENT_TIME);
        });
        expect(result).toBe(1);
        expect(store.vms.byQid(1)!.properties).toEqual({ memory: "800" });
        expect(store.events.latestSequence()).toBe(1);
      });

      it("rethrows what its work throws, and rolls back every write to VMs", () => {
        insert(1, "work");
        store.vms.setProperty(1, "memory", "800");
        store.vms.addTag(1, "office");
        store.vms.setFeature(1, "gui", "1");
        store.vms.setNotes(1, "before");
        insert(2, "play");
        const before = store.vms.byQid(1)!;

        const thrown = thrownBy(() =>
          store.transaction(() => {
            insert(3, "new");
            store.vms.setProperty(3, "label", "red");
            store.vms.setProperty(1, "memory", "1200");
            store.vms.deleteProperty(1, "memory");
            store.vms.setProperty(1, "vcpus", "2");
            store.vms.addTag(1, "mail");
            store.vms.removeTag(1, "office");
            store.vms.setFeature(1, "gui", "0");
            store.vms.setFeature(1, "qrexec", "1");
            store.vms.setNotes(1, "after");
            store.vms.rename(1, "job");
            store.vms.remove(2);
            throw failure;
          }),
        );

        expect(thrown).toBe(failure);
        expect(store.vms.byQid(1)).toMatchObject({ name: "work", revision: before.revision, properties: { memory: "800" }, tags: ["office"] });
        expect(store.vms.byName("job")).toBeUndefined();
        expect(store.vms.features(1)).toEqual({ gui: "1" });
        expect(store.vms.notes(1)).toBe("before");
        expect(store.vms.byQid(2)?.name).toBe("play");
        expect(store.vms.byQid(3)).toBeUndefined();
        expect(store.vms.withLabel("red")).toEqual([]);
        expect(names(store.vms.all())).toEqual(["dom0", "work", "play"]);
        expect(store.vms.nextQid()).toBe(3);
      });

      it("rolls back every write to globals, labels and requests", () => {
        store.globals.set("default_netvm", "2");
        const thrown = thrownBy(() =>
          store.transaction(() => {
            store.globals.set("default_netvm", "3");
            store.globals.set("default_template", "1");
            store.labels.insert({ name: "pink", color: 0xff69b4, index: 9, builtin: false });
            store.labels.remove("red");
            store.requests.remember("request-1", { rpc: "CreateVm", request: "{}", result: "uuid", time: EVENT_TIME });
            throw failure;
          }),
        );
        expect(thrown).toBe(failure);
        expect(store.globals.all()).toEqual({ default_netvm: "2" });
        expect(byIndex(store.labels.list())).toEqual(BUILTIN_LABELS);
        expect(store.requests.find("request-1")).toBeUndefined();
      });

      it("rolls back the events it appended", () => {
        appendCommitted(event("a"));
        thrownBy(() =>
          store.transaction(() => {
            store.events.append(event("lost-1"), EVENT_TIME);
            store.events.append(event("lost-2"), EVENT_TIME);
            throw failure;
          }),
        );
        expect(store.events.latestSequence()).toBe(1);
        expect(store.events.after(0, 100).map((e) => e.name)).toEqual(["a"]);
      });

      it("run within another is part of it: rolled back with it, inner writes and events too", () => {
        insert(1, "work");
        thrownBy(() =>
          store.transaction(() => {
            store.transaction(() => {
              store.vms.setProperty(1, "memory", "800");
              store.events.append(event("property-set:memory", "work"), EVENT_TIME);
            });
            expect(store.vms.byQid(1)!.properties.memory).toBe("800");
            throw failure;
          }),
        );
        expect(store.vms.byQid(1)!.properties).toEqual({});
        expect(store.events.latestSequence()).toBe(0);
      });

      it("run within another returns its work's result and commits with the outer one", () => {
        insert(1, "work");
        const result = store.transaction(() => {
          const inner = store.transaction(() => {
            store.vms.setProperty(1, "memory", "800");
            return "inner";
          });
          store.vms.addTag(1, "office");
          return inner;
        });
        expect(result).toBe("inner");
        expect(store.vms.byQid(1)).toMatchObject({ properties: { memory: "800" }, tags: ["office"] });
      });

      describe("onCommit listeners", () => {
        it("get the events of each committed transaction once it is on disk, not before, in order, every listener", async () => {
          const first: StoredEvent[][] = [];
          const second: StoredEvent[][] = [];
          store.onCommit((events) => first.push([...events]));
          store.onCommit((events) => second.push([...events]));
          appendCommitted(event("a", "work", { k: "v" }), event("b"));
          appendCommitted(event("c"));
          // Committed, not yet durable: no one hears of what a power loss could still undo.
          expect(first).toEqual([]);
          await store.durable();
          expect(first.map((events) => events.map((e) => [e.sequence, e.name]))).toEqual([
            [
              [1, "a"],
              [2, "b"],
            ],
            [[3, "c"]],
          ]);
          expect(second).toEqual(first);
          expect(first[0][0]).toEqual<StoredEvent>({ sequence: 1, time: EVENT_TIME, subject: "work", subjectUuid: uuidOf("work"), name: "a", kwargs: { k: "v" } });
        });

        it("get nothing for a transaction that rolled back, nor later with the next one's", async () => {
          const published: StoredEvent[][] = [];
          store.onCommit((events) => published.push([...events]));
          thrownBy(() =>
            store.transaction(() => {
              store.events.append(event("lost"), EVENT_TIME);
              throw failure;
            }),
          );
          await store.durable();
          expect(published).toEqual([]);
          appendCommitted(event("kept"));
          await store.durable();
          expect(published.map((events) => events.map((e) => e.name))).toEqual([["kept"]]);
        });

        it("get a nested transaction's events with the outer one's, once it commits", async () => {
          const published: string[][] = [];
          store.onCommit((events) => published.push(events.map((e) => e.name)));
          store.transaction(() => {
            store.events.append(event("outer-1"), EVENT_TIME);
            store.transaction(() => store.events.append(event("inner"), EVENT_TIME));
            expect(published).toEqual([]);
            store.events.append(event("outer-2"), EVENT_TIME);
          });
          await store.durable();
          expect(published).toEqual([["outer-1", "inner", "outer-2"]]);
        });

        it("are called after the commit: they read what it wrote, and may run transactions of their own", async () => {
          insert(1, "work");
          const seen: (string | undefined)[] = [];
          store.onCommit(() => {
            seen.push(store.vms.byQid(1)!.properties.memory);
            // The event hub trims the log from its listener, in a transaction of its own.
            store.transaction(() => store.events.trim(10));
            // A listener's own transaction that fails leaves the committed one alone.
            thrownBy(() =>
              store.transaction(() => {
                store.vms.deleteProperty(1, "memory");
                throw failure;
              }),
            );
          });
          store.transaction(() => {
            store.vms.setProperty(1, "memory", "800");
            store.events.append(event("property-set:memory", "work"), EVENT_TIME);
          });
          await store.durable();
          expect(seen).toEqual(["800"]);
          expect(store.vms.byQid(1)!.properties).toEqual({ memory: "800" });
          expect(store.events.after(0, 100).map((e) => e.name)).toEqual(["property-set:memory"]);
        });
      });
    });

    describe("close()", () => {
      it("leaves the store unusable: reads and writes throw", () => {
        insert(1, "work");
        store.close();
        expect(() => store.vms.byQid(1)).toThrow();
        expect(() => store.vms.list({}, "", 100)).toThrow();
        expect(() => store.globals.set("default_netvm", "1")).toThrow();
        expect(() => store.transaction(() => store.vms.setProperty(1, "memory", "800"))).toThrow();
      });
    });
  });
}
