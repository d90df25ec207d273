import type { Clock } from "../ports/clock";
import type { Store, VmRecord } from "../ports/store";
import { InvalidFieldError, notFound } from "./errors";
import type { VmLookup } from "./vm-lookup";

const FEATURE_NAME = /^[\x21-\x7e]{1,255}$/;
const MAX_FEATURE_VALUE = 64 * 1024;

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
    private readonly clock: Clock,
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
  set(vm: string, name: string, value: string): void {
    checkName(name);
    if (value.length > MAX_FEATURE_VALUE || value.includes("\0")) {
      throw new InvalidFieldError("value", `feature values are text of at most ${MAX_FEATURE_VALUE} characters, without NUL`, "INVALID_FEATURE_VALUE");
    }
    this.store.transaction(() => {
      const record = this.vms.resolve(vm);
      const old = this.store.vms.features(record.qid)[name];
      if (old === value) return;
      this.store.vms.setFeature(record.qid, name, value);
      const kwargs: Record<string, string> = { feature: name, value };
      if (old !== undefined) kwargs.oldvalue = old;
      this.store.events.append({ subject: record.name, name: `domain-feature-set:${name}`, kwargs }, this.clock.now());
    });
  }

  remove(vm: string, name: string, allowMissing: boolean): void {
    checkName(name);
    this.store.transaction(() => {
      const record = this.vms.resolve(vm);
      if (!this.store.vms.removeFeature(record.qid, name)) {
        if (allowMissing) return;
        throw featureNotFound(record.name, name);
      }
      this.store.events.append({ subject: record.name, name: `domain-feature-delete:${name}`, kwargs: { feature: name } }, this.clock.now());
    });
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

  private lookupOrder(vm: VmRecord, scope: FeatureScope): VmRecord[] {
    const order = [vm];
    const referenced = (property: string) => {
      const qid = vm.properties[property];
      const record = qid === undefined ? undefined : this.store.vms.byQid(Number(qid));
      if (record) order.push(record);
    };
    if (scope === "template" || scope === "template-and-adminvm") referenced("template");
    if (scope === "netvm") referenced("netvm");
    if (scope === "adminvm" || scope === "template-and-adminvm") order.push(this.store.vms.byQid(0)!);
    return order;
  }
}

function checkName(name: string): void {
  if (!FEATURE_NAME.test(name)) {
    throw new InvalidFieldError("name", "feature names are 1 to 255 printable ASCII characters without spaces", "INVALID_FEATURE_NAME");
  }
}

function featureNotFound(vm: string, feature: string) {
  return notFound("FEATURE_NOT_FOUND", `${vm} has no feature ${feature}`, { vm, feature });
}
