import type { Store } from "../../../ports/store";
import type { PowerState } from "../../model/power-state";
import type { VmFilter, VmRecord } from "../../model/vm-record";
import { InvalidFieldError } from "../../errors";
import { checkedPageSize, type PageTokens } from "../../shared/page-token";
import type { PowerStates } from "../power-states";
import type { PropertyResolver, SnapshotResolver } from "../properties/property-resolver";
import type { VmProperties } from "../properties/vm-properties";
import { vmSpec } from "../properties/property-schema";
import { etagOf } from "../vm-etag";
import type { VmLookup } from "../vm-lookup";
import { StableVmViews } from "./stable-vm-views";
import { FullVmView, type StoredPartSource, type Vm } from "./vm-view";

export interface VmListRequest {
  /** `pid`: only VMs whose hypervisor process it is (running VMs only). */
  filter: VmFilter & { state?: PowerState; pid?: number };
  pageSize: number;
  pageToken: string;
  /** With every property and the features of each VM. */
  full: boolean;
  /**
   * A bound in bytes as well as in VMs (tags alone may make a VM 65 KiB, features 256 KiB more
   * in the FULL view): the page ends before the VM that would take it past
   * `maxBytes` (as `sizeOf` weighs each), so that no mix of VMs makes a page too large to send.
   * A page holds one VM at least.
   */
  budget?: { maxBytes: number; sizeOf(vm: Vm): number };
}

export interface VmPage {
  vms: Vm[];
  nextPageToken: string;
  totalSize: number;
}

/** What a listing selects by that the power-state table knows, not the store. */
interface LiveFilter {
  state: PowerState | undefined;
  pid: number | undefined;
}

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

/**
 * The read side of VMs, for GetVm and ListVms: views built from the store, the power-state
 * table and the properties' resolution. Reads never wait for operations on the VMs.
 */
export class VmReadModel {
  private readonly stableViews: StableVmViews;

  constructor(
    private readonly store: Store,
    private readonly lookup: VmLookup,
    private readonly powerStates: PowerStates,
    properties: VmProperties,
    private readonly resolver: PropertyResolver,
    private readonly tokens: PageTokens,
  ) {
    this.stableViews = new StableVmViews(store, properties);
  }

  /** The VM a request names (its name or `uuid:<uuid>`), with every property and its features. */
  get(text: string, field = "vm"): Vm {
    return this.fullViews([this.lookup.resolve(text, field)], this.resolver.snapshot())[0];
  }

  /** The short view of the VM a request names, or undefined when there is none. */
  find(text: string, field = "vm"): Vm | undefined {
    const record = this.lookup.find(text, field);
    return record && this.view(record);
  }

  /** The full view of a stored VM: every property, and its features. */
  full(record: VmRecord): Vm {
    return this.fullViews([record], this.resolver.snapshot())[0];
  }

  /** The short view of a stored VM (no properties or features). */
  view(record: VmRecord, resolver = this.resolver, template = resolver.templateOf(record)?.name ?? ""): Vm {
    const facts = this.powerStates.runtime(record.uuid);
    const runtime = facts && { ...facts, ip: addressOf(resolver, record, "ip"), ip6: addressOf(resolver, record, "ip6") };
    return {
      qid: record.qid,
      uuid: record.uuid,
      name: record.name,
      klass: record.klass,
      state: this.powerStates.of(record),
      label: record.properties.label ?? "",
      template,
      tags: record.tags,
      createdAt: record.createdAt,
      updatedAt: record.updatedAt,
      etag: etagOf(record),
      runtime,
    };
  }

  list(request: VmListRequest): VmPage {
    const pageSize = checkedPageSize(request.pageSize, DEFAULT_PAGE_SIZE);
    if ((request.filter.pid ?? 0) < 0) throw new InvalidFieldError("pid", "must not be negative");
    const { state, pid, ...filter } = request.filter;
    const resolver = this.resolver.snapshot();
    // The power state and the pid come from the power-state table, not the store: they are filtered here.
    const live = { state, pid: pid || undefined };
    const matching = this.matching(filter, this.tokens.decode(request.pageToken, request.filter), live, pageSize + 1);
    const records: VmRecord[] = [];
    let next = matching.next();
    while (!next.done && records.length < pageSize) {
      records.push(next.value);
      next = matching.next();
    }
    let more = !next.done;
    let vms = request.full ? this.fullViews(records, resolver) : records.map((record) => this.view(record, resolver));
    const fitting = request.budget ? countFitting(vms, request.budget) : vms.length;
    if (fitting < vms.length) {
      vms = vms.slice(0, fitting);
      more = true;
    }
    return {
      vms,
      nextPageToken: more ? this.tokens.encode(vms[vms.length - 1].name, request.filter) : "",
      totalSize: live.state || live.pid ? count(this.matching(filter, "", live, MAX_PAGE_SIZE)) : this.store.vms.count(filter),
    };
  }

  /** Drops what was kept of a removed VM. */
  forget(qid: number): void {
    this.stableViews.forget(qid);
  }

  /** The VMs after `after` that match, by name, read from the store a batch at a time. */
  private *matching(filter: VmFilter, after: string, live: LiveFilter, batchSize: number): Generator<VmRecord, void, undefined> {
    for (;;) {
      const batch = this.store.vms.list(filter, after, batchSize);
      for (const record of batch) {
        if (live.state && this.powerStates.of(record) !== live.state) continue;
        if (live.pid && this.powerStates.runtime(record.uuid)?.pid !== live.pid) continue;
        yield record;
      }
      if (batch.length < batchSize) return;
      after = batch[batch.length - 1].name;
    }
  }

  private fullViews(records: readonly VmRecord[], resolver: SnapshotResolver): Vm[] {
    const stable = this.stableViews.of(records, resolver);
    const source: StoredPartSource = {
      properties: (record, view) => this.stableViews.storedProperties(record, view, resolver),
      features: (record) => this.store.vms.features(record.qid),
    };
    return records.map((record, i) => {
      const { view, features } = stable[i];
      const live = view.live.map((spec) => resolver.vm(record, spec));
      return new FullVmView(this.view(record, resolver, view.template), view, live, record, features, source);
    });
  }
}

/** A running VM's address of one family: its property's value, empty without a netvm. */
function addressOf(resolver: PropertyResolver, record: VmRecord, name: "ip" | "ip6"): string {
  const { value } = resolver.vm(record, vmSpec(name));
  return typeof value === "string" ? value : "";
}

/** How many of the VMs, from the first, fit in the budget; one at least. */
function countFitting(vms: readonly Vm[], budget: { maxBytes: number; sizeOf(vm: Vm): number }): number {
  let bytes = 0;
  for (let i = 0; i < vms.length; i++) {
    bytes += budget.sizeOf(vms[i]);
    if (bytes > budget.maxBytes) return Math.max(i, 1);
  }
  return vms.length;
}

function count(items: Iterable<unknown>): number {
  let n = 0;
  for (const _ of items) n++;
  return n;
}
