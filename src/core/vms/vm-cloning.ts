import type { Store } from "../../ports/store";
import { vmClass, type VmClassName } from "../model/vm-classes";
import { draftRecord, type VmIdentity, type VmRecord } from "../model/vm-record";
import type { CallContext } from "../shared/call-context";
import { unreported, type ProgressReporter } from "../shared/progress";
import type { NewVms } from "./new-vms";
import type { PowerStates } from "./power-states";
import type { PropertyResolver } from "./properties/property-resolver";
import { requireMemoryWithinMaxmem } from "./properties/property-checks";
import { vmPropertySpecs } from "./properties/property-schema";
import type { Vm } from "./read-model/vm-view";
import { checkPools, creatableClass, templateFor } from "./vm-creation";
import { vmClassRefuses } from "./vm-errors";
import type { VmLookup } from "./vm-lookup";
import { checkVmName } from "./vm-names";
import type { VmOperations } from "./vm-operations";
import type { VmParticipants } from "./vm-participant";

export interface CloneRequest {
  vm: string;
  newName: string;
  /** The clone's class; undefined for the source's. */
  klass: VmClassName | undefined;
  pool: string;
  volumePools: Readonly<Record<string, string>>;
  /** Whether the copy's volumes are read-only (machined's CloneImage read_only). */
  readOnly?: boolean;
}

/** What a clone does not take from its source: what names it, and addresses, which stay unique. */
const UNCOPIED = new Set(["name", "uuid", "qid", "klass", "label", "template", "ip", "ip6", "mac", "start_time"]);

/**
 * Copies a halted VM with its properties, features, tags and notes under a new name (and
 * optionally another class), as Qubes' clone does. Addresses are not copied: they stay unique.
 * The source is held for the whole copy (no other operation on it runs), so the clone is of one
 * state of it, never of a change half made.
 */
export class VmCloning {
  constructor(
    private readonly store: Store,
    private readonly lookup: VmLookup,
    private readonly resolver: PropertyResolver,
    private readonly powerStates: PowerStates,
    private readonly operations: VmOperations,
    private readonly participants: VmParticipants,
    private readonly newVms: NewVms,
  ) {}

  /**
   * Makes the copy. As the work of an operation (`operation` given), the bytes its volumes'
   * copies take are told (none when they are cheap) and a cancellation undoes what was made. Retries are the operation's to answer (its request_id): this
   * makes a copy each time it is called.
   */
  async clone(request: CloneRequest, ctx: CallContext, operation?: { progress: ProgressReporter }): Promise<Vm> {
    const { name, klass } = this.parse(request);
    return this.operations.on(request.vm, "vm", ctx, "clone it", (source) => {
      this.checkSource(source);
      const identity = this.newVms.identity();
      return this.newVms.make(
        () => this.draft(source, name, klass ?? source.klass, identity),
        // The operation counts the bytes the volumes' copies take, not the steps of the birth.
        { rpc: "CloneVm", key: "", request, ctx, operation: operation && { progress: unreported } },
        this.participants.join("onClone")
          ? (clone, revert) => this.participants.cloned(source, clone, ctx, revert, { pool: request.pool, volumePools: request.volumePools, readOnly: request.readOnly }, operation?.progress)
          : undefined,
        (qid) => this.copyAttributes(source, qid),
      );
    });
  }

  /**
   * Refuses a request that cannot make a copy as things stand now (a bad field, a missing or
   * running source, a name taken…), before any work begins: the call fails, not an operation.
   * What changes meanwhile is checked again as the copy is made.
   */
  check(request: CloneRequest): void {
    const { name, klass } = this.parse(request);
    const source = this.lookup.resolve(request.vm);
    this.checkSource(source);
    this.draft(source, name, klass ?? source.klass, this.newVms.identity());
  }

  private parse(request: CloneRequest): { name: string; klass: VmClassName | undefined } {
    const name = checkVmName(request.newName, "new_name");
    const klass = request.klass === undefined ? undefined : creatableClass(request.klass);
    checkPools(this.store, request.pool, request.volumePools);
    return { name, klass };
  }

  private checkSource(source: VmRecord): void {
    if (!vmClass(source.klass).clonable) throw vmClassRefuses(source, "cloned");
    this.powerStates.requireHalted(source, "cloned");
  }

  private draft(source: VmRecord, name: string, klass: VmClassName, identity: VmIdentity): VmRecord {
    this.newVms.requireFreeName(name);
    const properties: Record<string, string> = { label: source.properties.label ?? "black" };
    if (vmClass(klass).templateClass) {
      const template = templateFor(this.store, this.lookup, this.resolver, klass, this.resolver.templateOf(source)?.name ?? "");
      if (template) properties.template = String(template.qid);
    }
    for (const spec of vmPropertySpecs(klass)) {
      const value = source.properties[spec.name];
      if (!UNCOPIED.has(spec.name) && value !== undefined) properties[spec.name] = value;
    }
    const draft = draftRecord(identity, name, klass, properties);
    // Another class may take its memory or maxmem from elsewhere (a template, or none).
    requireMemoryWithinMaxmem(this.resolver, draft);
    return draft;
  }

  /** The features, tags (but who created it) and notes of the source, onto the clone. */
  private copyAttributes(source: VmRecord, qid: number): void {
    this.newVms.copyFeaturesAndTags(source.qid, qid);
    this.store.vms.setNotes(qid, this.store.vms.notes(source.qid));
  }
}
