import type { SqliteStore } from "../../../../../src/adapters/store/sqlite/sqlite-store";
import type { VmRecord } from "../../../../../src/core/model/vm-record";
import { storeForEach } from "../../../../fixtures/temp-store";

describe("VM records' revisions", () => {
  const opened = storeForEach();
  let store: SqliteStore;
  beforeEach(() => {
    store = opened.current;
    store.transaction(() => store.vms.insert({ qid: 1, uuid: "11111111-1111-1111-1111-111111111111", name: "work", klass: "StandaloneVM", createdAt: new Date() }));
  });

  const work = (): VmRecord => store.vms.byQid(1)!;

  it("keeps an unchanged record, frozen, for every way of reading it", () => {
    const first = work();
    expect(Object.isFrozen(first) && Object.isFrozen(first.properties) && Object.isFrozen(first.tags)).toBe(true);
    expect(store.vms.byName("work")).toBe(first);
    expect(store.vms.byUuid(first.uuid)).toBe(first);
    expect(store.vms.list({}, "", 10).find((r) => r.qid === 1)).toBe(first);
  });

  it.each<[string, () => unknown, (r: VmRecord) => unknown]>([
    ["a property set", () => store.vms.setProperty(1, "memory", "900"), (r) => r.properties.memory],
    ["a property reset", () => store.vms.deleteProperty(1, "memory"), (r) => r.properties.memory],
    ["a tag added", () => store.vms.addTag(1, "green"), (r) => r.tags],
    ["a tag removed", () => store.vms.removeTag(1, "blue"), (r) => r.tags],
    ["a feature set", () => store.vms.setFeature(1, "gui", "0"), () => store.vms.features(1)],
    ["a feature removed", () => store.vms.removeFeature(1, "gui"), () => store.vms.features(1)],
    ["a rename", () => store.vms.rename(1, "play"), (r) => r.name],
  ])("changes with %s, and the record read next shows it", (_, write, shown) => {
    store.transaction(() => {
      store.vms.setProperty(1, "memory", "800");
      store.vms.addTag(1, "blue");
      store.vms.setFeature(1, "gui", "1");
    });
    const before = work();
    const shownBefore = shown(before);
    store.transaction(write);
    const after = work();
    expect(after.revision).not.toBe(before.revision);
    expect(shown(after)).not.toEqual(shownBefore);
    expect(store.vms.list({}, "", 10).find((r) => r.qid === 1)).toBe(after);
  });

  it("never takes a record read inside a transaction that rolled back for the committed one", () => {
    const committed = work();
    expect(() =>
      store.transaction(() => {
        store.vms.setProperty(1, "memory", "800");
        expect(work().properties.memory).toBe("800");
        throw new Error("changed my mind");
      }),
    ).toThrow("changed my mind");
    expect(work().properties.memory).toBeUndefined();
    expect(work().revision).toBe(committed.revision);
  });

  it("does not take a new VM that reuses a qid for the removed one", () => {
    store.transaction(() => store.vms.setProperty(1, "memory", "800"));
    const old = work();
    store.transaction(() => {
      store.vms.remove(1);
      store.vms.insert({ qid: 1, uuid: "22222222-2222-2222-2222-222222222222", name: "work", klass: "StandaloneVM", createdAt: new Date() });
    });
    expect(work()).not.toBe(old);
    expect(work().properties).toEqual({});
  });
});
