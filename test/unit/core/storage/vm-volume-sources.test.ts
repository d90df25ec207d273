import { SimHypervisor } from "../../../../src/adapters/hypervisor/sim/sim-hypervisor";
import { MEMORY_STORAGE_DRIVER, StorageDriverRegistry } from "../../../../src/adapters/storage/storage-drivers";
import { buildCore, type Core } from "../../../../src/app/build-core";
import { DomainError, InvalidFieldError } from "../../../../src/core/errors";
import type { NewVm } from "../../../../src/core/vms/vm-creation";
import { systemClock } from "../../../../src/ports/clock";
import type { ImageFile, ImageFolder } from "../../../../src/ports/image-folder";
import { testContext } from "../../../fixtures/call-context";
import { LogCapture } from "../../../fixtures/log-capture";
import { storeForEach } from "../../../fixtures/temp-store";

const EVENTS = { retained: 1000, heartbeatMs: 5000, subscriberBuffer: 1000 };

/** An images folder of one file, whose first bytes are those of a qcow2 image. */
class OneQcow2Image implements ImageFolder {
  opened = 0;
  open(): Promise<ImageFile> {
    this.opened++;
    const bytes = new Uint8Array(1024 * 1024);
    bytes.set([0x51, 0x46, 0x49, 0xfb]);
    return Promise.resolve({
      sizeBytes: bytes.length,
      head: (length: number) => Promise.resolve(bytes.subarray(0, length)),
      chunks: async function* () {
        yield bytes;
      },
      close: () => Promise.resolve(),
    });
  }
}

describe("a new VM's volumes made from an image or an import stream", () => {
  const opened = storeForEach();
  let core: Core;

  beforeEach(async () => {
    core = buildCore(
      { store: opened.current, hypervisor: new SimHypervisor(), clock: systemClock, log: new LogCapture().log, storage: new StorageDriverRegistry([MEMORY_STORAGE_DRIVER]), images: new OneQcow2Image() },
      { events: EVENTS, host: { version: "test", hostname: "test-host" } },
    );
    await core.adopt();
    await core.pools.add("memory", "memory", {}, testContext());
  });
  afterEach(() => core.release());

  const request = (format?: "raw"): NewVm => ({
    name: "from-image",
    klass: "TemplateVM",
    label: "black",
    template: "",
    properties: {},
    pool: "memory",
    volumePools: {},
    volumes: { root: { kind: "image", file: "disk.qcow2", format, sha256: "" } },
  });

  it("is refused before any volume is made when the image is qcow2 and the pool takes raw bytes only, naming the image", async () => {
    const refusal = await core.creation.check(request()).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refusal).toBeInstanceOf(InvalidFieldError);
    expect(refusal).toMatchObject({ field: "volumes[root].image.file" });
    expect((refusal as Error).message).toMatch(/qcow2 image, and pool memory takes raw bytes only/);
    expect(core.readModel.list({ filter: {}, pageSize: 10, pageToken: "", full: false }).vms.map((vm) => vm.name)).toEqual(["dom0"]);
  });

  it("is taken as raw bytes when the request says so", async () => {
    await expect(core.creation.check(request("raw"))).resolves.toBeUndefined();
  });

  it("answers a retry of a new TemplateVM's import that is still at work ABORTED, and once it ended, with its VM", async () => {
    const requestId = "0b8f6a52-7c1d-4e3a-9f20-5d6c7b8a9e01";
    const sector = new Uint8Array(512).fill(7);
    let pulled!: () => void;
    const firstPulled = new Promise<void>((resolve) => (pulled = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    async function* held(): AsyncGenerator<Uint8Array> {
      yield sector;
      pulled();
      await released;
      yield sector;
    }
    const template = (chunks: AsyncIterable<Uint8Array>): NewVm => ({
      ...request(),
      name: "imported",
      volumes: { root: { kind: "stream", sizeBytes: 1024, sha256: "", format: "raw", chunks } },
    });
    const first = core.creation.createImported(template(held()), requestId, testContext());
    await firstPulled;

    const retry = await core.creation.createImported(template(held()), requestId, testContext()).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(retry).toBeInstanceOf(DomainError);
    expect(retry).toMatchObject({ kind: "aborted", reason: "REQUEST_UNDER_WAY" });

    release();
    const made = await first;
    const again = await core.creation.createImported(template(held()), requestId, testContext());
    expect(again.uuid).toBe(made.uuid);
  });
});
