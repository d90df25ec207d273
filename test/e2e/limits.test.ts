import * as grpc from "@grpc/grpc-js";
import { VmClass, VmView } from "../../gen/steward/v1/vm_pb";
import { MIN_MAX_MESSAGE_BYTES } from "../../src/config";
import { rpcError } from "../fixtures/expect-rpc-error";
import { str } from "../fixtures/property-values";
import { serverForSuite } from "../fixtures/server-with-clients";

/** What a client may store is bounded (docs/LIMITS.md), and over a bound the answer names the field and the limit. */
describe("limits on what a client stores", () => {
  const suite = serverForSuite(["--max-message-bytes", String(MIN_MAX_MESSAGE_BYTES)]);
  const refused = async (call: Promise<unknown>, reason: string, field: string, limit: string) => {
    const error = await rpcError(call);
    expect([error.code, error.info?.reason, error.info?.metadata.field, error.info?.metadata.limit]).toEqual([grpc.status.INVALID_ARGUMENT, reason, field, limit]);
    expect(error.details).toContain(limit);
  };

  beforeAll(async () => {
    await suite.vms.createVm({ name: "lim", klass: VmClass.STANDALONE_VM, label: "red" });
  });

  it("bounds string properties: kernelopts at Qubes' 512 characters, the others at 256", async () => {
    const { vms, host } = suite;
    await vms.setProperty({ vm: "lim", name: "kernelopts", value: str("é".repeat(512)) });
    await refused(vms.setProperty({ vm: "lim", name: "kernelopts", value: str("o".repeat(513)) }), "PROPERTY_TOO_LONG", "value", "512");
    await vms.setProperty({ vm: "lim", name: "default_user", value: str("u".repeat(256)) });
    await refused(vms.setProperty({ vm: "lim", name: "default_user", value: str("u".repeat(257)) }), "PROPERTY_TOO_LONG", "value", "256");
    await refused(
      vms.createVm({ name: "lim-new", klass: VmClass.STANDALONE_VM, label: "red", properties: { default_user: str("u".repeat(257)) } }),
      "PROPERTY_TOO_LONG",
      "properties[default_user]",
      "256",
    );
    await refused(host.setGlobalProperty({ name: "default_kernel", value: str("k".repeat(65)) }), "PROPERTY_TOO_LONG", "value", "64");
  });

  it("takes a kernel by name, never a path", async () => {
    const { vms, host } = suite;
    await vms.setProperty({ vm: "lim", name: "kernel", value: str("6.1.0-18-amd64") });
    for (const path of ["/boot/vmlinuz", "../../etc/passwd", "a/b", "..", ".", "x..y", "k\u00e9rnel"]) {
      for (const call of [vms.setProperty({ vm: "lim", name: "kernel", value: str(path) }), host.setGlobalProperty({ name: "default_kernel", value: str(path) })]) {
        const error = await rpcError(call);
        expect([path, error.code, error.info?.reason, error.info?.metadata.field]).toEqual([path, grpc.status.INVALID_ARGUMENT, "INVALID_PROPERTY_VALUE", "value"]);
      }
    }
  });

  it("bounds features: a value at 8 KiB, 256 per VM, 256 KiB per VM in all", async () => {
    const { vms } = suite;
    await vms.createVm({ name: "lim-features", klass: VmClass.STANDALONE_VM, label: "red" });
    await refused(vms.setFeature({ vm: "lim-features", name: "big", value: "v".repeat(8 * 1024 + 1) }), "INVALID_FEATURE_VALUE", "value", "8192");
    // Counted in UTF-8 bytes: 4,097 two-byte characters are over.
    await refused(vms.setFeature({ vm: "lim-features", name: "big", value: "é".repeat(4097) }), "INVALID_FEATURE_VALUE", "value", "8192");
    for (let i = 0; i < 31; i++) await vms.setFeature({ vm: "lim-features", name: `f${i}`, value: "v".repeat(8 * 1024) });
    await refused(vms.setFeature({ vm: "lim-features", name: "f31", value: "v".repeat(8 * 1024) }), "FEATURES_TOO_LARGE", "value", String(256 * 1024));
    // A smaller value in place of a large one always fits.
    await vms.setFeature({ vm: "lim-features", name: "f0", value: "1" });
    for (let i = 0; i < 31; i++) await vms.removeFeature({ vm: "lim-features", name: `f${i}` });
    for (let i = 0; i < 256; i++) await vms.setFeature({ vm: "lim-features", name: `n${i}`, value: "1" });
    await refused(vms.setFeature({ vm: "lim-features", name: "n256", value: "1" }), "TOO_MANY_FEATURES", "name", "256");
    await vms.setFeature({ vm: "lim-features", name: "n0", value: "2" }); // an existing one still changes
  });

  it("bounds feature names at 255 printable ASCII characters", async () => {
    const { vms } = suite;
    const error = await rpcError(vms.setFeature({ vm: "lim", name: "n".repeat(256), value: "1" }));
    expect([error.code, error.info?.reason, error.info?.metadata.field]).toEqual([grpc.status.INVALID_ARGUMENT, "INVALID_FEATURE_NAME", "name"]);
    await vms.setFeature({ vm: "lim", name: "n".repeat(255), value: "1" });
  });

  it("bounds tags: 255 characters, 256 per VM (created-by included)", async () => {
    const { vms } = suite;
    await vms.createVm({ name: "lim-tags", klass: VmClass.STANDALONE_VM, label: "red" });
    await refused(vms.addTag({ vm: "lim-tags", tag: "t".repeat(256) }), "INVALID_TAG", "tag", "255");
    for (let i = 0; i < 255; i++) await vms.addTag({ vm: "lim-tags", tag: `t${i}` });
    await refused(vms.addTag({ vm: "lim-tags", tag: "t255" }), "TOO_MANY_TAGS", "tag", "256");
    await vms.addTag({ vm: "lim-tags", tag: "t0" }); // one it has: idempotent
  });

  it("bounds label names, the labels of the host, and notes", async () => {
    const { vms, host } = suite;
    await refused(host.createLabel({ name: "l".repeat(32), color: "#008080" }), "INVALID_LABEL_NAME", "name", "31");
    const { labels } = await host.listLabels({});
    for (let i = labels.length; i < 256; i++) await host.createLabel({ name: `l${i}`, color: "#008080" });
    await refused(host.createLabel({ name: "one-more", color: "#008080" }), "TOO_MANY_LABELS", "name", "256");
    const first = await host.listLabels({});
    expect(first.labels).toHaveLength(100);
    expect((await host.listLabels({ pageSize: 1000 })).labels).toHaveLength(256);
    const rest = await host.listLabels({ pageSize: 1000, pageToken: first.nextPageToken });
    expect([rest.labels.length, rest.labels[0].index, rest.nextPageToken]).toEqual([156, 101, ""]);
    await refused(vms.setNotes({ vm: "lim", notes: "n".repeat(256 * 1024 + 1) }), "NOTES_TOO_LONG", "notes", String(256 * 1024));
  });

  it("bounds ListVms FULL pages by bytes: VMs as large as allowed still list, page by page", async () => {
    const { vms } = suite;
    const heavy = Array.from({ length: 6 }, (_, i) => `heavy-${i}`);
    for (const name of heavy) {
      await vms.createVm({ name, klass: VmClass.STANDALONE_VM, label: "red" });
      for (let f = 0; f < 31; f++) await vms.setFeature({ vm: name, name: `f${f}`, value: "x".repeat(8 * 1024) });
    }
    const listed: string[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await vms.listVms({ view: VmView.FULL, pageSize: 1000, pageToken });
      listed.push(...page.vms.map((vm) => vm.name));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken);
    expect(listed.filter((name) => name.startsWith("heavy-"))).toEqual(heavy);
    // Six VMs of about 250 KiB do not fit in one 1 MiB message.
    expect(pages).toBeGreaterThanOrEqual(2);
    // GetVm of the largest VM fits too.
    expect(Object.keys((await vms.getVm({ vm: "heavy-0" })).vm!.features)).toHaveLength(31);
  });

  it("bounds ListVms BASIC pages by bytes too: tags alone can fill a message", async () => {
    const { vms } = suite;
    const tagged = Array.from({ length: 16 }, (_, i) => `tagged-${i}`);
    for (const name of tagged) {
      await vms.createVm({ name, klass: VmClass.STANDALONE_VM, label: "red" });
      await Promise.all(Array.from({ length: 255 }, (_, t) => vms.addTag({ vm: name, tag: `${String(t).padStart(3, "0")}${"t".repeat(252)}` })));
    }
    const listed: string[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await vms.listVms({ pageSize: 1000, pageToken, tag: "000" + "t".repeat(252) });
      listed.push(...page.vms.map((vm) => vm.name));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken);
    expect(listed).toEqual([...tagged].sort());
    // Sixteen VMs of 65 KiB of tags each do not fit in one 1 MiB message.
    expect(pages).toBeGreaterThanOrEqual(2);
  });
});
