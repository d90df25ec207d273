import type { Store } from "../../ports/store";
import type { EventLog } from "../events/event-log";
import type { VmRecord } from "../model/vm-record";
import type { CallContext } from "../shared/call-context";
import { featureNotFound, featuresTooLarge, invalidFeatureName, invalidFeatureValue, tooManyFeatures } from "./vm-errors";
import { domainFeatureDelete, domainFeatureSet } from "./vm-events";
import type { VmLookup } from "./vm-lookup";
import type { VmOperations } from "./vm-operations";
import type { PropertyResolver } from "./properties/property-resolver";
import type { VmTarget } from "./vm-etag";

const FEATURE_NAME = /^[\x21-\x7e]{1,255}$/;
/** The most a feature's value holds, in UTF-8 bytes (Qubes' menu-items lists run to a few KiB). */
export const MAX_FEATURE_VALUE_BYTES = 8 * 1024;
/** The most features a VM has. */
export const MAX_FEATURES = 256;
/** The most bytes a VM's features hold, names and values together: its FULL view stays small. */
export const MAX_FEATURE_BYTES = 256 * 1024;
/** The most VMs a check looks through: far more than any chain of templates or netvms. */
const MAX_CHAIN = 64;

/** Where CheckFeature looks after the VM itself, as Qubes' check_with_* do. */
export type FeatureScope = "vm" | "template" | "netvm" | "adminvm" | "template-and-adminvm";

export interface FeatureFound {
  value: string;
  /** The VM that has it. */
  vm: string;
}

/**
 * A VM's features (Qubes' vm.feature.*): string settings that the guest and tools read, such as
 * os-distribution or gui. "" is a false value.
 */
export class VmFeatures {
  constructor(
    private readonly store: Store,
    private readonly vms: VmLookup,
    private readonly resolver: PropertyResolver,
    private readonly operations: VmOperations,
    private readonly events: EventLog,
  ) {}

  list(vm: string): Record<string, string> {
    return this.store.vms.features(this.vms.resolve(vm).qid);
  }

  get(vm: string, name: string): string {
    checkName(name);
    const record = this.vms.resolve(vm);
    const value = this.store.vms.features(record.qid)[name];
    if (value === undefined) throw featureNotFound(record.name, name);
    return value;
  }

  /** Sets a feature. Idempotent: setting the value it has changes nothing and tells nothing. */
  async set(vm: VmTarget, name: string, value: string, ctx: CallContext): Promise<void> {
    checkName(name);
    if (value.includes("\0") || Buffer.byteLength(value) > MAX_FEATURE_VALUE_BYTES) throw invalidFeatureValue(MAX_FEATURE_VALUE_BYTES);
    await this.operations.on(vm, "vm", ctx, "set a feature", (record) =>
      this.store.transaction(() => {
        const features = this.store.vms.features(record.qid);
        const old = features[name];
        if (old === value) return;
        checkRoom(features, name, value);
        this.store.vms.setFeature(record.qid, name, value);
        this.events.append(domainFeatureSet(record, name, value, old));
      }),
    );
  }

  async remove(vm: VmTarget, name: string, allowMissing: boolean, ctx: CallContext): Promise<void> {
    checkName(name);
    await this.operations.on(vm, "vm", ctx, "remove a feature", (record) =>
      this.store.transaction(() => {
        if (!this.store.vms.removeFeature(record.qid, name)) {
          if (allowMissing) return;
          throw featureNotFound(record.name, name);
        }
        this.events.append(domainFeatureDelete(record, name));
      }),
    );
  }

  /** Looks the feature up on the VM, then along the scope; undefined when no VM has it. */
  check(vm: string, name: string, scope: FeatureScope): FeatureFound | undefined {
    checkName(name);
    for (const record of this.lookupOrder(this.vms.resolve(vm), scope)) {
      const value = this.store.vms.features(record.qid)[name];
      if (value !== undefined) return { value, vm: record.name };
    }
    return undefined;
  }

  /**
   * Where a feature is looked for, in order, as Qubes' recursive check_with_* do: the VM, then
   * every hop of its template chain (a DispVM's AppVM, then that one's TemplateVM) or of its
   * effective netvm chain (defaults included), then dom0. A chain is followed with a bound.
   */
  private lookupOrder(vm: VmRecord, scope: FeatureScope): VmRecord[] {
    const order = [vm];
    const follow = (next: (record: VmRecord) => VmRecord | undefined) => {
      for (let hop = next(vm); hop && order.length < MAX_CHAIN && !order.some((seen) => seen.qid === hop!.qid); hop = next(hop)) order.push(hop);
    };
    if (scope === "template" || scope === "template-and-adminvm") follow((record) => this.resolver.templateOf(record));
    if (scope === "netvm") follow((record) => this.resolver.netvmOf(record));
    if (scope === "adminvm" || scope === "template-and-adminvm") order.push(this.store.vms.byQid(0)!);
    return order;
  }
}

function checkName(name: string): void {
  if (!FEATURE_NAME.test(name)) throw invalidFeatureName();
}

/** A VM's features stay within their count and size once `name` is set to `value`. */
function checkRoom(features: Readonly<Record<string, string>>, name: string, value: string): void {
  const names = Object.keys(features);
  if (features[name] === undefined && names.length >= MAX_FEATURES) throw tooManyFeatures(MAX_FEATURES);
  let bytes = name.length + Buffer.byteLength(value);
  for (const other of names) if (other !== name) bytes += other.length + Buffer.byteLength(features[other]);
  if (bytes > MAX_FEATURE_BYTES) throw featuresTooLarge(MAX_FEATURE_BYTES);
}
