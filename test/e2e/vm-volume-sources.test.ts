import { anyUnpack } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb";
import { OperationMetadataSchema } from "../../gen/steward/v1/operation_pb";
import { OperationService } from "../../gen/steward/v1/operation_service_pb";
import { VmClass } from "../../gen/steward/v1/vm_pb";
import { VmService, type CreateVmRequestSchema } from "../../gen/steward/v1/vm_service_pb";
import { VolumeFormat } from "../../gen/steward/v1/volume_pb";
import { VolumeService } from "../../gen/steward/v1/volume_service_pb";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { createClient, type StewardClient } from "../../src/client/steward-client";
import { rpcError } from "../fixtures/expect-rpc-error";
import { createdVm } from "../fixtures/made-vms";
import { startTestServer, type TestServer } from "../fixtures/test-server";
import { makeTempDir, removeDir } from "../fixtures/temp-dir";
import { collect, importStream, pattern, rebuild, sha256, templateStream, type ImportMessage } from "../fixtures/volume-bytes";

const MiB = 1024 * 1024;
type NewVm = MessageInitShape<typeof CreateVmRequestSchema>;

describe("a new VM's volumes made from an existing volume, an image, or an import stream", () => {
  let server: TestServer;
  let vms: StewardClient<typeof VmService>;
  let volumes: StewardClient<typeof VolumeService>;
  let ops: StewardClient<typeof OperationService>;
  let images: string;
  let elsewhere: string;
  const ref = (vid: string, pool = "default") => ({ pool, vid, vm: "", name: "" });
  const ofVm = (vm: string, name: string) => ({ pool: "", vid: "", vm, name });
  const contentOf = async (volume: ReturnType<typeof ref>) => rebuild(await collect(volumes.exportVolume({ volume }))).content;
  /** CreateVm, waited for until its operation ends. */
  const created = async (request: NewVm) => {
    const op = await vms.createVm(request);
    return op.done ? op : ops.waitOperation({ name: op.name, timeout: { seconds: 60n, nanos: 0 } });
  };
  const failure = (op: Awaited<ReturnType<typeof created>>) => {
    const status = op.result.case === "error" ? op.result.value : undefined;
    return { code: status?.code, reason: status && anyUnpack(status.details[0], ErrorInfoSchema)?.reason };
  };
  const refusal = async (call: Promise<unknown>) => {
    const error = await rpcError(call);
    return { code: error.code, reason: error.info?.reason, field: error.info?.fieldViolations[0]?.field };
  };
  /** The vids of the default pool's volumes that VMs own or make (vms/...). */
  const vmVids = async () => (await volumes.listVolumes({ pool: "default" })).volumes.map((volume) => volume.vid).filter((vid) => vid.startsWith("vms/"));

  beforeAll(async () => {
    server = await startTestServer();
    vms = createClient(VmService, server.tcp);
    volumes = createClient(VolumeService, server.tcp);
    ops = createClient(OperationService, server.tcp);
    images = path.join(server.dataDir, "images");
    elsewhere = makeTempDir();
  });
  afterAll(async () => {
    vms.close();
    volumes.close();
    ops.close();
    await server.stop();
    removeDir(elsewhere);
  });

  describe("CreateVm from an image in the images folder", () => {
    it("imports a raw image as a TemplateVM's root, its progress counted in the image's bytes", async () => {
      const content = pattern(3 * MiB, 7);
      fs.writeFileSync(path.join(images, "base.img"), content);
      const op = await created({ name: "from-raw", klass: VmClass.TEMPLATE_VM, label: "black", volumes: { root: { source: { case: "image", value: { file: "base.img", sha256: sha256(content) } } } } });
      expect(createdVm(op)?.name).toBe("from-raw");
      expect(anyUnpack(op.metadata!, OperationMetadataSchema)).toMatchObject({ progressDone: BigInt(content.length), progressTotal: BigInt(content.length) });
      expect((await contentOf(ofVm("from-raw", "root"))).equals(content)).toBe(true);
      // The image stays where it was: it was copied, not moved.
      expect(fs.existsSync(path.join(images, "base.img"))).toBe(true);
      // Its private volume is made as any new VM's is.
      expect((await volumes.getVolume({ volume: ofVm("from-raw", "private") })).volume?.sizeBytes).toBe(BigInt(2 * 1024 * MiB));
    });

    it("tells a qcow2 image by its first bytes, checks it and converts it", async () => {
      const content = pattern(2 * MiB, 9);
      const raw = path.join(elsewhere, "disk.raw");
      fs.writeFileSync(raw, content);
      execFileSync("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", raw, path.join(images, "disk.qcow2")]);
      const op = await created({ name: "from-qcow2", klass: VmClass.STANDALONE_VM, label: "red", volumes: { root: { source: { case: "image", value: { file: "disk.qcow2" } } } } });
      expect(createdVm(op)?.name).toBe("from-qcow2");
      expect((await contentOf(ofVm("from-qcow2", "root"))).equals(content)).toBe(true);
      // Told to read it as raw, its bytes are taken as they are.
      await created({ name: "qcow2-as-raw", klass: VmClass.STANDALONE_VM, label: "red", volumes: { private: { source: { case: "image", value: { file: "disk.qcow2", format: VolumeFormat.RAW } } } } });
      expect((await contentOf(ofVm("qcow2-as-raw", "private"))).subarray(0, 4).toString("latin1")).toBe("QFI\xfb");
    });

    it("makes no VM when the image's checksum differs, nor when a qcow2 image is refused", async () => {
      fs.writeFileSync(path.join(images, "other.img"), pattern(MiB, 3));
      const before = await vmVids();
      const mismatch = await created({ name: "bad-sum", klass: VmClass.TEMPLATE_VM, label: "black", volumes: { root: { source: { case: "image", value: { file: "other.img", sha256: "0".repeat(64) } } } } });
      expect(failure(mismatch)).toEqual({ code: grpc.status.DATA_LOSS, reason: "CHECKSUM_MISMATCH" });
      // A qcow2 image with a backing file is refused as ImportVolume refuses it.
      execFileSync("qemu-img", ["create", "-f", "qcow2", "-F", "raw", "-b", "/etc/hostname", path.join(images, "backed.qcow2"), "1M"], { stdio: "ignore" });
      const backed = await created({ name: "backed", klass: VmClass.TEMPLATE_VM, label: "black", volumes: { root: { source: { case: "image", value: { file: "backed.qcow2" } } } } });
      expect(failure(backed)).toEqual({ code: grpc.status.INVALID_ARGUMENT, reason: "IMAGE_INVALID" });
      for (const name of ["bad-sum", "backed"]) expect((await rpcError(vms.getVm({ vm: name }))).code).toBe(grpc.status.NOT_FOUND);
      expect(await vmVids()).toEqual(before);
    });

    it("refuses names that are no file in the folder, symbolic links and missing images, before any operation", async () => {
      const ask = (file: string) => vms.createVm({ name: "nope", klass: VmClass.TEMPLATE_VM, label: "black", volumes: { root: { source: { case: "image", value: { file } } } } });
      for (const file of ["../steward.db", "/etc/passwd", "a/b", ".hidden", "..", "x\0y"]) {
        expect([file, await refusal(ask(file))]).toEqual([file, { code: grpc.status.INVALID_ARGUMENT, reason: "INVALID_IMAGE_NAME", field: "volumes[root].image.file" }]);
      }
      fs.symlinkSync("/etc/hostname", path.join(images, "link.img"));
      expect(await refusal(ask("link.img"))).toEqual({ code: grpc.status.INVALID_ARGUMENT, reason: "INVALID_IMAGE_NAME", field: "volumes[root].image.file" });
      fs.mkdirSync(path.join(images, "folder.img"));
      expect((await refusal(ask("folder.img"))).reason).toBe("IMAGE_NOT_FOUND");
      expect(await refusal(ask("missing.img"))).toMatchObject({ code: grpc.status.NOT_FOUND, reason: "IMAGE_NOT_FOUND" });
      fs.writeFileSync(path.join(images, "odd.img"), Buffer.alloc(1000));
      expect(await refusal(ask("odd.img"))).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, field: "volumes[root].image.file" });
      expect((await rpcError(vms.getVm({ vm: "nope" }))).code).toBe(grpc.status.NOT_FOUND);
    });
  });

  describe("CreateVm with an existing volume", () => {
    it("takes a pool's volume as the VM's own, content and vid kept; RemoveVm then deletes it", async () => {
      const content = pattern(MiB, 11);
      await volumes.createVolume({ pool: "default", vid: "disks/data", sizeBytes: BigInt(content.length) });
      await volumes.importVolume(importStream({ pool: "default", vid: "disks/data" }, content));
      const op = await created({ name: "taker", klass: VmClass.STANDALONE_VM, label: "red", volumes: { private: { source: { case: "existing", value: ref("disks/data") } } } });
      expect(createdVm(op)?.name).toBe("taker");
      const taken = (await volumes.getVolume({ volume: ofVm("taker", "private") })).volume!;
      expect([taken.pool, taken.vid, taken.vm, taken.saveOnStop, taken.snapOnStart]).toEqual(["default", "disks/data", "taker", true, false]);
      expect((await contentOf(ofVm("taker", "private"))).equals(content)).toBe(true);
      // It is the VM's now: not deleted on its own, and saved at each stop as a private volume is.
      expect((await refusal(volumes.deleteVolume({ pool: "default", vid: "disks/data" }))).code).toBe(grpc.status.FAILED_PRECONDITION);
      await vms.startVm({ vm: "taker" });
      await vms.killVm({ vm: "taker" });
      expect((await volumes.listSnapshots({ volume: ofVm("taker", "private") })).revisions.length).toBe(1);
      await vms.removeVm({ vm: "taker" });
      expect((await refusal(volumes.getVolume({ volume: ref("disks/data") }))).code).toBe(grpc.status.NOT_FOUND);
    });

    it("refuses a volume a VM owns or has attached, one missing, and names its class does not take", async () => {
      await volumes.createVolume({ pool: "default", vid: "disks/shared", sizeBytes: BigInt(MiB) });
      await vms.createVm({ name: "holder", klass: VmClass.STANDALONE_VM, label: "red" });
      await volumes.attachVolume({ vm: "holder", volume: ref("disks/shared"), name: "extra", rw: false });
      const ask = (klass: VmClass, volume: string, existing: ReturnType<typeof ref>) =>
        vms.createVm({ name: "nope", klass, label: "red", template: klass === VmClass.APP_VM ? "holder-template" : "", volumes: { [volume]: { source: { case: "existing", value: existing } } } });
      await vms.createVm({ name: "holder-template", klass: VmClass.TEMPLATE_VM, label: "black" });
      expect(await refusal(ask(VmClass.STANDALONE_VM, "private", ref("disks/shared")))).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, reason: "VOLUME_IN_USE" });
      const holders = (await volumes.getVolume({ volume: ofVm("holder", "private") })).volume!;
      expect(await refusal(ask(VmClass.STANDALONE_VM, "private", ref(holders.vid)))).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, reason: "VOLUME_IN_USE" });
      expect(await refusal(ask(VmClass.STANDALONE_VM, "private", ref("disks/none")))).toMatchObject({ code: grpc.status.NOT_FOUND, reason: "VOLUME_NOT_FOUND" });
      expect(await refusal(ask(VmClass.STANDALONE_VM, "private", ref("../x")))).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, field: "volumes[private].existing.vid" });
      await volumes.createVolume({ pool: "default", vid: "disks/free", sizeBytes: BigInt(MiB) });
      // An AppVM's root is its template's, snapshotted at each start; volatile is made fresh at each start.
      expect(await refusal(ask(VmClass.APP_VM, "root", ref("disks/free")))).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, field: "volumes[root]" });
      expect(await refusal(ask(VmClass.STANDALONE_VM, "volatile", ref("disks/free")))).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, field: "volumes[volatile]" });
      expect(await refusal(ask(VmClass.STANDALONE_VM, "swap", ref("disks/free")))).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, reason: "INVALID_VOLUME_NAME", field: "volumes[swap]" });
      const twice = vms.createVm({ name: "nope", klass: VmClass.STANDALONE_VM, label: "red", volumes: { root: { source: { case: "existing", value: ref("disks/free") } }, private: { source: { case: "existing", value: ref("disks/free") } } } });
      expect((await refusal(twice)).code).toBe(grpc.status.INVALID_ARGUMENT);
      expect((await refusal(vms.createVm({ name: "nope", klass: VmClass.STANDALONE_VM, label: "red", volumes: { private: {} } }))).field).toBe("volumes[private]");
      expect((await volumes.getVolume({ volume: ref("disks/free") })).volume?.vm).toBe("");
    });

    it("does not take a volume while a change of it is under way", async () => {
      const content = pattern(2 * MiB, 17);
      await volumes.createVolume({ pool: "default", vid: "disks/busy", sizeBytes: BigInt(content.length) });
      let resume: () => void = () => undefined;
      const paused = new Promise<void>((resolve) => (resume = resolve));
      const importing = volumes.importVolume(
        (async function* () {
          const messages = importStream({ pool: "default", vid: "disks/busy" }, content);
          yield messages.next().value as ImportMessage;
          yield messages.next().value as ImportMessage;
          await paused;
          yield* messages;
        })(),
      );
      // The import has its turn once its first chunk is in.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const refused = await refusal(vms.createVm({ name: "too-soon", klass: VmClass.STANDALONE_VM, label: "red", volumes: { private: { source: { case: "existing", value: ref("disks/busy") } } } }));
      expect([refused.code, refused.reason]).toEqual([grpc.status.FAILED_PRECONDITION, "VOLUME_IN_USE"]);
      resume();
      await importing;
      expect((await volumes.getVolume({ volume: ref("disks/busy") })).volume?.vm).toBe("");
      expect((await contentOf(ref("disks/busy"))).equals(content)).toBe(true);
    });

    it("refuses changes of a volume while a VM being made takes it", async () => {
      const content = pattern(MiB, 19);
      await volumes.createVolume({ pool: "default", vid: "disks/taken", sizeBytes: BigInt(content.length) });
      await volumes.importVolume(importStream({ pool: "default", vid: "disks/taken" }, content));
      let resume: () => void = () => undefined;
      const paused = new Promise<void>((resolve) => (resume = resolve));
      const root = pattern(MiB, 20);
      const making = volumes.importVolume(
        (async function* () {
          const messages = templateStream({ name: "taker", klass: VmClass.TEMPLATE_VM, label: "black", volumes: { private: { source: { case: "existing", value: ref("disks/taken") } } } }, root, { chunk: 512 * 1024 });
          yield messages.next().value as ImportMessage;
          yield messages.next().value as ImportMessage;
          await paused;
          yield* messages;
        })(),
      );
      // Once the VM holds it, even a change to what it is already is refused.
      const change = () => refusal(volumes.setVolumeProperty({ volume: ref("disks/taken"), property: { case: "revisionsToKeep", value: 1 } }));
      let refused = await change();
      for (let tries = 0; refused.reason !== "VOLUME_IN_USE" && tries < 50; tries++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        refused = await change();
      }
      expect([refused.code, refused.reason]).toEqual([grpc.status.FAILED_PRECONDITION, "VOLUME_IN_USE"]);
      for (const call of [volumes.deleteVolume({ pool: "default", vid: "disks/taken" }), volumes.resizeVolume({ volume: ref("disks/taken"), sizeBytes: BigInt(2 * MiB) })]) {
        expect((await refusal(call)).reason).toBe("VOLUME_IN_USE");
      }
      resume();
      await making;
      const taken = (await volumes.getVolume({ volume: ref("disks/taken") })).volume!;
      expect([taken.vm, taken.name]).toEqual(["taker", "private"]);
      expect((await contentOf(ref("disks/taken"))).equals(content)).toBe(true);
    });

    it("leaves the volume the pool's when the VM is not made", async () => {
      const content = pattern(MiB, 13);
      await volumes.createVolume({ pool: "default", vid: "disks/kept", sizeBytes: BigInt(content.length) });
      await volumes.importVolume(importStream({ pool: "default", vid: "disks/kept" }, content));
      fs.writeFileSync(path.join(images, "root.img"), pattern(MiB, 1));
      const op = await created({
        name: "half",
        klass: VmClass.STANDALONE_VM,
        label: "red",
        volumes: { private: { source: { case: "existing", value: ref("disks/kept") } }, root: { source: { case: "image", value: { file: "root.img", sha256: "f".repeat(64) } } } },
      });
      expect(failure(op).reason).toBe("CHECKSUM_MISMATCH");
      const kept = (await volumes.getVolume({ volume: ref("disks/kept") })).volume!;
      expect([kept.vm, kept.name]).toEqual(["", ""]);
      expect((await contentOf(ref("disks/kept"))).equals(content)).toBe(true);
    });
  });

  describe("ImportVolume of a new TemplateVM", () => {
    const template = (name: string, extra: { requestId?: string; volumes?: NewVm["volumes"] } = {}): NewVm => ({ name, klass: VmClass.TEMPLATE_VM, label: "black", ...extra });

    it("makes the TemplateVM once its root's bytes all arrived and checked out", async () => {
      const content = pattern(5 * MiB, 21);
      const reply = await volumes.importVolume(templateStream(template("imported"), content, { sha256: sha256(content) }));
      expect([reply.volume?.vm, reply.volume?.name, reply.bytesReceived, reply.sha256]).toEqual(["imported", "root", BigInt(content.length), sha256(content)]);
      expect((await vms.getVm({ vm: "imported" })).vm?.klass).toBe(VmClass.TEMPLATE_VM);
      expect((await contentOf(ofVm("imported", "root"))).equals(content)).toBe(true);
      // An AppVM of it starts on a snapshot of those bytes.
      await vms.createVm({ name: "imported-app", klass: VmClass.APP_VM, label: "red", template: "imported" });
      await vms.startVm({ vm: "imported-app" });
      expect((await contentOf(ofVm("imported-app", "root"))).equals(content)).toBe(true);
      await vms.killVm({ vm: "imported-app" });
    });

    it("takes a qcow2 image, and a retry with its request_id answers the VM it made", async () => {
      const content = pattern(2 * MiB, 23);
      const raw = path.join(elsewhere, "tpl.raw");
      fs.writeFileSync(raw, content);
      const qcow2 = path.join(elsewhere, "tpl.qcow2");
      execFileSync("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", raw, qcow2]);
      const image = fs.readFileSync(qcow2);
      const requestId = "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f";
      const first = await volumes.importVolume(templateStream(template("from-image", { requestId }), image, { format: VolumeFormat.QCOW2 }));
      expect(first.bytesReceived).toBe(BigInt(image.length));
      expect((await contentOf(ofVm("from-image", "root"))).equals(content)).toBe(true);
      const retry = await volumes.importVolume(templateStream(template("from-image", { requestId }), image, { format: VolumeFormat.QCOW2 }));
      expect([retry.volume?.vid, retry.bytesReceived]).toEqual([first.volume?.vid, 0n]);
    });

    it("makes no VM of a stream that is short, too long, wrong, or cancelled", async () => {
      const content = pattern(3 * MiB, 25);
      const before = await vmVids();
      const short = await refusal(volumes.importVolume(templateStream(template("short"), content, { stopAfter: 1 })));
      expect([short.code, short.field]).toEqual([grpc.status.INVALID_ARGUMENT, "header.size_bytes"]);
      const long = await refusal(volumes.importVolume(templateStream(template("long"), content, { sizeBytes: MiB })));
      expect([long.code, long.field]).toEqual([grpc.status.INVALID_ARGUMENT, "chunk"]);
      const wrong = await refusal(volumes.importVolume(templateStream(template("wrong"), content, { sha256: "a".repeat(64) })));
      expect([wrong.code, wrong.reason]).toEqual([grpc.status.DATA_LOSS, "CHECKSUM_MISMATCH"]);
      const abort = new AbortController();
      const cancelled = volumes.importVolume(
        (async function* () {
          const messages = templateStream(template("cancelled"), content);
          yield messages.next().value as ImportMessage;
          yield messages.next().value as ImportMessage;
          abort.abort();
          await new Promise(() => undefined);
        })(),
        { signal: abort.signal },
      );
      expect((await rpcError(cancelled)).code).toBe(grpc.status.CANCELLED);
      for (const name of ["short", "long", "wrong", "cancelled"]) expect((await rpcError(vms.getVm({ vm: name }))).code).toBe(grpc.status.NOT_FOUND);
      // What the cancelled one made is undone once the server sees the call end.
      const deadline = Date.now() + 5000;
      while ((await vmVids()).length !== before.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await vmVids()).toEqual(before);
    });

    it("refuses another class, a content for its root, a header without a size, and a bad VM, naming each field as the request holds it", async () => {
      const content = pattern(MiB, 27);
      expect(await refusal(volumes.importVolume(templateStream({ name: "app", klass: VmClass.APP_VM, label: "red" }, content)))).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, field: "header.new_template.klass" });
      fs.writeFileSync(path.join(images, "tpl-root.img"), content);
      const withRoot = template("with-root", { volumes: { root: { source: { case: "image", value: { file: "tpl-root.img" } } } } });
      expect((await refusal(volumes.importVolume(templateStream(withRoot, content)))).field).toBe("header.new_template.volumes[root]");
      expect((await refusal(volumes.importVolume(templateStream(template("sizeless"), content, { sizeBytes: 0 })))).field).toBe("header.size_bytes");
      // The VM's own fields are named as the request holds them, under new_template.
      expect((await refusal(volumes.importVolume(templateStream(template("Bad Name"), content)))).field).toBe("header.new_template.name");
      expect((await refusal(volumes.importVolume(templateStream({ ...template("bad-uuid"), uuid: "not-a-uuid" }, content)))).field).toBe("header.new_template.uuid");
    });
  });
});
