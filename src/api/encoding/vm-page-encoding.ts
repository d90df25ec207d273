import { create, toBinary } from "@bufbuild/protobuf";
import { VmSchema } from "../../../gen/steward/v1/vm_pb";
import { ListVmsResponseSchema, type ListVmsResponse } from "../../../gen/steward/v1/vm_service_pb";
import type { StableVmView } from "../../core/vms/read-model/stable-vm-views";
import type { VmPage } from "../../core/vms/read-model/vm-read-model";
import type { Vm } from "../../core/vms/read-model/vm-view";
import { encodedResponse } from "../../server/grpc-definitions";
import { powerStateMessage, runtimeMessage } from "../vms/vm-messages";
import { encodeStablePart, propertyEntry } from "./vm-encoding";
import { LENGTH_DELIMITED, lengthDelimitedSize, tag, VARINT, varintSize, WireWriter } from "./wire-writer";

/*
 * ListVms pages in the FULL view, encoded from pieces kept with each VM's stable view: a page
 * of 1,000 VMs holds 26,000 properties, and encoding them all anew for every page would cost
 * most of the call.
 *
 * A Vm message may be written as pieces one after the other: protobuf merges them, and the
 * elements of a repeated field keep the order in which they come. So each VM is written as its
 * stable part (its fields, the properties the store decides and the features, encoded once per
 * stable view) followed by the live properties, power state and runtime, encoded for each page.
 * On the wire it is a ListVmsResponse like any other; the message returned holds the same VMs
 * as fields protobuf-es writes out as they are (`$unknown`, under the number of `vms`).
 */

const VMS = ListVmsResponseSchema.field.vms.number;
const NEXT_PAGE_TOKEN = ListVmsResponseSchema.field.nextPageToken.number;
const TOTAL_SIZE = ListVmsResponseSchema.field.totalSize.number;

/**
 * The encoding of a VM's current stable view, in room kept for the VM across its views: a new
 * encoding of the same size or smaller is written over the last one. Allocating the encodings
 * of 10,000 VMs anew each time they all change (a global property) fragmented the process'
 * native heap by tens of MB.
 */
interface EncodingRoom {
  view: StableVmView;
  room: Uint8Array;
  bytes: Uint8Array;
}

const encodings = new WeakMap<object, EncodingRoom>();
/** Extra room given to an encoding, so that it may grow a little in place. */
const SLACK = 64;

function encodingOf(view: StableVmView): Uint8Array | undefined {
  const kept = encodings.get(view.lineage);
  return kept?.view === view ? kept.bytes : undefined;
}

function keepEncoding(view: StableVmView, bytes: Uint8Array): void {
  const kept = encodings.get(view.lineage);
  if (kept && kept.room.length >= bytes.length) {
    kept.room.set(bytes);
    kept.view = view;
    if (kept.bytes.length !== bytes.length) kept.bytes = kept.room.subarray(0, bytes.length);
    return;
  }
  const room = new Uint8Array(bytes.length + SLACK);
  room.set(bytes);
  encodings.set(view.lineage, { view, room, bytes: room.subarray(0, bytes.length) });
}

export function fullPageMessage(page: VmPage): ListVmsResponse {
  encodeStableViews(page.vms);
  const states = new StatePieces();
  const vms = page.vms.map((vm) => vmPieces(vm, states));
  const token = Buffer.from(page.nextPageToken, "utf8");
  const hasToken = token.length > 0;
  const hasTotal = page.totalSize !== 0;
  // Sized first, so that a page (700 kB for 1,000 VMs) is one allocation, not a growing buffer.
  const size =
    vms.reduce((sum, pieces) => sum + lengthDelimitedSize(VMS, pieces), 0) +
    (hasToken ? lengthDelimitedSize(NEXT_PAGE_TOKEN, [token]) : 0) +
    (hasTotal ? varintSize(tag(TOTAL_SIZE, VARINT)) + varintSize(page.totalSize) : 0);
  const buffer = pageBuffers.take(size);
  const out = new WireWriter(buffer);
  const spans = vms.map((pieces) => out.lengthDelimited(VMS, pieces));
  if (hasToken) out.lengthDelimited(NEXT_PAGE_TOKEN, [token]);
  if (hasTotal) {
    out.tag(TOTAL_SIZE, VARINT);
    out.varint(page.totalSize);
  }
  const bytes = out.written();
  const response = create(ListVmsResponseSchema, { nextPageToken: page.nextPageToken, totalSize: page.totalSize });
  response.$unknown = spans.map(({ start, end }) => ({ no: VMS, wireType: LENGTH_DELIMITED, data: bytes.subarray(start, end) }));
  return encodedResponse(response, bytes, () => pageBuffers.give(buffer));
}

/**
 * What each VM weighs on a FULL page, exactly as fullPageMessage writes it: what bounds a page
 * by bytes. The encodings it makes are those the page is then written from.
 */
export function fullVmSizer(): (vm: Vm) => number {
  const states = new StatePieces();
  return (vm) => {
    encodeStableViews([vm]);
    return lengthDelimitedSize(VMS, vmPieces(vm, states));
  };
}

/**
 * At most what a VM weighs on a BASIC page (its fields, tags and runtime, no properties): an
 * upper bound, cheaper than encoding it twice. Its names and tags are ASCII, so characters are
 * bytes; each field costs its tag and a length of a few bytes, counted as 4 to spare.
 */
export function basicVmSize(vm: Vm): number {
  let size = BASIC_VM_FIXED_BYTES + vm.name.length + vm.label.length + vm.template.length;
  for (const tag of vm.tags) size += tag.length + 4;
  if (vm.runtime) {
    size += RUNTIME_FIXED_BYTES + vm.runtime.ip.length * 2 + vm.runtime.ip6.length;
    for (const nic of vm.runtime.interfaces) size += nic.name.length + nic.mac.length + 12;
  }
  return size;
}

/**
 * A BASIC VM's bytes besides its names, tags and runtime: the uuid, class, state, qid, times,
 * etag and framing, generously.
 */
const BASIC_VM_FIXED_BYTES = 200;
/** A runtime's bytes besides its addresses and interfaces: start time, pid, vsock cid and framing. */
const RUNTIME_FIXED_BYTES = 48;

/**
 * Buffers for pages, written again once a page is sent. A listing of 10,000 VMs writes 7 MB
 * of pages; allocated anew for each, blocks of that size freed by the collector in its own time
 * left the process' native heap tens of MB larger. A page's bytes are lent to its response,
 * which gives them back once grpc-js has copied them (see encodedResponse).
 */
export class PageBuffers {
  private free: Buffer[] = [];

  /** A buffer of at least `size` bytes: the smallest free one, or a new one a little larger, to serve again. */
  take(size: number): Buffer {
    // The free buffers go from the largest to the smallest.
    for (let i = this.free.length - 1; i >= 0; i--) {
      if (this.free[i].length >= size) return this.free.splice(i, 1)[0];
    }
    return Buffer.allocUnsafe(Math.ceil(size / PAGE_BUFFER_STEP) * PAGE_BUFFER_STEP);
  }

  /** Takes a buffer back; the largest few are kept, for pages coming in the same moment. */
  give(buffer: Buffer): void {
    if (buffer.length > MAX_KEPT_PAGE_BUFFER) return;
    this.free.push(buffer);
    this.free.sort((a, b) => b.length - a.length);
    this.free.length = Math.min(this.free.length, KEPT_PAGE_BUFFERS);
  }
}

const PAGE_BUFFER_STEP = 256 * 1024;
const KEPT_PAGE_BUFFERS = 2;
const MAX_KEPT_PAGE_BUFFER = 16 * 1024 * 1024;
const pageBuffers = new PageBuffers();

/** A VM of a FULL page (so with a stable view, encoded by now), as pieces to write one after the other. */
function vmPieces(vm: Vm, states: StatePieces): Uint8Array[] {
  const pieces = [encodingOf(vm.stable!)!];
  for (const property of vm.live!) pieces.push(propertyEntry(property));
  pieces.push(states.of(vm));
  return pieces;
}

/**
 * Encodes the stable views not encoded yet (see vm-encoding.ts). A stable view holds for one
 * revision of the VM, so its name, tags and label are the same whenever the view comes back.
 */
function encodeStableViews(vms: readonly Vm[]): void {
  for (const vm of vms) {
    if (encodingOf(vm.stable!)) continue;
    const properties = vm.properties!;
    keepEncoding(vm.stable!, encodeStablePart(vm, properties, properties.length - vm.live!.length));
  }
}

/**
 * The power state and runtime of a page's VMs: those without a runtime encoded once per page
 * for each state.
 * (Live properties need no such thing: those the VMs share, as halted VMs' start_time, keep
 * their encoding; see propertyEntry.)
 */
class StatePieces {
  /** The pieces of VMs with no runtime (halted, most of them), by state. */
  private readonly withoutRuntime = new Map<string, Uint8Array>();

  of(vm: Vm): Uint8Array {
    // A running VM's runtime is its own (its pid, its addresses): encoded for it alone.
    if (vm.runtime) return this.encode(vm);
    let bytes = this.withoutRuntime.get(vm.state);
    if (!bytes) this.withoutRuntime.set(vm.state, (bytes = this.encode(vm)));
    return bytes;
  }

  private encode(vm: Vm): Uint8Array {
    return toBinary(VmSchema, create(VmSchema, { state: powerStateMessage(vm.state), runtime: runtimeMessage(vm) }));
  }
}
