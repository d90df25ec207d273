import type { Clock } from "../../ports/clock";
import type { Store } from "../../ports/store";
import type { EventLog } from "../events/event-log";
import type { VmIdentity, VmRecord } from "../model/vm-record";
import type { CallContext } from "../shared/call-context";
import type { RequestLedger } from "../shared/request-ledger";
import { callCancelled } from "../errors";
import { requestUnderWay } from "../shared/shared-errors";
import type { ProgressReporter } from "../shared/progress";
import { Revert } from "../shared/revert";
import type { Vm } from "./read-model/vm-view";
import type { VmReadModel } from "./read-model/vm-read-model";
import { requestResultGone, vmBeingMade, vmUuidInUse } from "./vm-errors";
import { requireFreeName } from "./vm-names-in-use";
import { domainAdd, domainTagAdd } from "./vm-events";
import { createdByTag, isCreatedByTag } from "./vm-tags";
import { addressesOfQid, defaultAddresses } from "./properties/vm-addresses";
import { addressInUse } from "./properties/property-errors";
import type { VmParticipants } from "./vm-participant";

/** How many qids a new VM skips, at most, for addresses set on other VMs. */
const MAX_QID_TRIES = 1000;

/** The request that makes a VM: its RPC, its request_id and what it asks, and the call. */
export interface Birth {
  rpc: string;
  key: string;
  request: object;
  ctx: CallContext;
  /**
   * Set when the VM is made by an operation: it tells its steps (drafted, joined by its
   * participants, stored), and a cancellation (ctx.signal) undoes the steps done, if it comes
   * before the VM is stored.
   */
  operation?: { progress: ProgressReporter };
}

/** The steps of making a VM, as an operation counts them: drafted, joined, stored. */
const BIRTH_STEPS = 3;

/** What a VM being made holds until it is stored or given up: its name, qid and uuid. */
interface Reservation {
  name: string;
  qid: number;
  uuid: string;
}

/**
 * How every new VM comes to be (created, disposable or cloned): its record is drafted, checked
 * against the rules; its participants set up what it needs; then, in one transaction, the rules
 * are checked again on the state as it is by then and the VM is stored with its events. A step
 * that fails undoes those before it, so a VM is made whole or not at all.
 *
 * Many VMs are made at once: from its draft until it is stored or given up, a new VM holds its
 * name, qid and uuid (reserved), so that no other new VM is drafted with them, while the
 * participants' slow work (copying volumes, importing an image) of each runs beside the others'.
 */
export class NewVms {
  constructor(
    private readonly store: Store,
    private readonly readModel: VmReadModel,
    private readonly participants: VmParticipants,
    private readonly ledger: RequestLedger,
    private readonly events: EventLog,
    private readonly clock: Clock,
  ) {}

  /** The VMs being made, by name folded to lower case (names differ in more than case). */
  private readonly reserved = new Map<string, Reservation>();
  private readonly reservedQids = new Set<number>();
  private readonly reservedUuids = new Set<string>();
  /** The request_ids of the requests making them. */
  private readonly reservedKeys = new Set<string>();
  /** The reservation of the VM whose commit runs now: its own draft, checked again, does not collide with it. */
  private committing: Reservation | undefined;

  /**
   * A qid and uuid for a VM about to be drafted. The qid is one whose addresses (the defaults a
   * qid gives) no VM has set as its own: a default never collides with a value set explicitly.
   */
  identity(uuid: string = crypto.randomUUID()): VmIdentity {
    const passed = new Set<number>();
    const skip = (candidate: number) => this.reservedQids.has(candidate) || passed.has(candidate);
    let qid = this.store.vms.nextQid(skip);
    for (let tries = 0; tries < MAX_QID_TRIES && this.addressesTaken(qid); tries++) {
      passed.add(qid);
      qid = this.store.vms.nextQid(skip);
    }
    return { qid, uuid, createdAt: this.clock.now() };
  }

  private addressesTaken(qid: number): boolean {
    // Default addresses hold 16 bits of the qid: past 65535 they repeat those of a lower qid.
    const sameDefaults = qid & 0xffff;
    if (sameDefaults !== qid && (sameDefaults === 0 || this.store.vms.byQid(sameDefaults))) return true;
    const addresses = addressesOfQid(qid);
    return this.store.vms.anySets("ip", addresses.ip) || this.store.vms.anySets("ip6", addresses.ip6) || this.store.vms.anySets("mac", addresses.mac);
  }

  /** Refuses a request_id that is not a UUID. */
  checkKey(key: string): void {
    this.ledger.checkKey(key);
  }

  /** The VM an earlier request with this key (asking the same) made; undefined when there was none. */
  earlier(key: string, rpc: string, request: object): Vm | undefined {
    const uuid = this.ledger.earlier(key, rpc, request);
    // A retry of a request still at work: ABORTED, to be retried again, not a VM_EXISTS for its own VM.
    if (uuid === undefined && this.reservedKeys.has(key)) throw requestUnderWay(key);
    if (uuid === undefined) return undefined;
    const record = this.store.vms.byUuid(uuid);
    if (!record) throw requestResultGone(key);
    return this.readModel.full(record);
  }

  /**
   * Refuses (VM_UUID_IN_USE) a uuid a client chose that another VM has, or that the retained
   * events name: a stream that follows a VM by uuid must not take a newcomer for it.
   */
  requireFreeUuid(uuid: string): void {
    if (this.store.vms.byUuid(uuid)) throw vmUuidInUse(uuid, "another VM's");
    if (this.reservedUuids.has(uuid) && this.committing?.uuid !== uuid) throw vmUuidInUse(uuid, "a VM's being made");
    if (this.store.events.namesUuid(uuid)) throw vmUuidInUse(uuid, "a removed VM's, which the retained events still name");
  }

  /** The features and tags (but who created it) of VM `from`, as stored now, onto the new VM `to`. */
  copyFeaturesAndTags(from: number, to: number): void {
    for (const [feature, value] of Object.entries(this.store.vms.features(from))) this.store.vms.setFeature(to, feature, value);
    for (const tag of this.store.vms.byQid(from)?.tags ?? []) if (!isCreatedByTag(tag)) this.store.vms.addTag(to, tag);
  }

  /** Refuses a name another VM has, or has but for the case of its letters, or that a VM being made has (VM_EXISTS). */
  requireFreeName(name: string): void {
    requireFreeName(this.store, name);
    const making = this.reserved.get(name.toLowerCase());
    if (making && making !== this.committing) throw vmBeingMade(name, making.name);
  }

  /** Whether a VM being made has this name, but for case. */
  isNameReserved(name: string): boolean {
    return this.reserved.has(name.toLowerCase());
  }

  /**
   * Holds the draft's name, qid and uuid until the returned release is called: after its undo,
   * if it failed, since what its participants made is known by its qid and uuid until undone.
   */
  private reserve({ name, qid, uuid }: VmRecord, key: string): { reservation: Reservation; release: () => void } {
    const reservation = { name, qid, uuid };
    this.reserved.set(name.toLowerCase(), reservation);
    this.reservedQids.add(qid);
    this.reservedUuids.add(uuid);
    if (key !== "") this.reservedKeys.add(key);
    const release = () => {
      if (this.reserved.get(name.toLowerCase()) === reservation) this.reserved.delete(name.toLowerCase());
      this.reservedQids.delete(qid);
      this.reservedUuids.delete(uuid);
      this.reservedKeys.delete(key);
    };
    return { reservation, release };
  }

  /**
   * Makes the VM `draft` describes: `draft` checks the rules and returns the record to store
   * (it runs twice: before the participants, and again in the committing transaction); `join`
   * runs the participants, when any has a hook for this (else the VM is made at once, with
   * nothing to wait for); `copy` writes what the record does not hold (a clone's features).
   */
  make(
    draft: () => VmRecord,
    birth: Birth,
    join: ((vm: VmRecord, revert: Revert) => Promise<void>) | undefined,
    copy: (qid: number) => void = () => undefined,
  ): Vm | Promise<Vm> {
    if (!join && !birth.operation) return this.commit(draft, birth, copy);
    const first = draft();
    const { reservation, release } = this.reserve(first, birth.key);
    const progress = birth.operation?.progress;
    progress?.(1, BIRTH_STEPS);
    return Revert.run(
      async (revert) => {
        await join?.(first, revert);
        progress?.(2, BIRTH_STEPS);
        if (birth.operation && birth.ctx.signal.aborted) throw callCancelled(`making ${first.name}`);
        const made = this.commitReserved(reservation, () => this.commit(draft, birth, copy));
        progress?.(3, BIRTH_STEPS);
        return made;
      },
      this.participants.undoFailed(first.name, `making ${first.name}`),
    ).finally(release);
  }

  /** Runs the commit of a reserved VM, whose draft, checked again, does not collide with its own reservation. */
  private commitReserved(reservation: Reservation, commit: () => Vm): Vm {
    this.committing = reservation;
    try {
      return commit();
    } finally {
      this.committing = undefined;
    }
  }

  /** Stores the VM, checked against the rules as they are now, with its events. */
  private commit(draft: () => VmRecord, birth: Birth, copy: (qid: number) => void): Vm {
    return this.store.transaction(() => {
      const record = draft();
      this.refuseTakenDefaults(record);
      this.insert(record);
      copy(record.qid);
      this.participants.committing(record);
      return this.announce(record, birth);
    });
  }

  /**
   * Refuses a VM whose default addresses (its qid's, or its dispid's) another VM set as its own
   * while this one was being made: a VM made meanwhile may have taken them explicitly.
   */
  private refuseTakenDefaults(record: VmRecord): void {
    const defaults = defaultAddresses(record);
    for (const kind of ["ip", "ip6", "mac"] as const) {
      if (record.properties[kind] === undefined && this.store.vms.anySets(kind, defaults[kind])) throw addressInUse(defaults[kind], kind, "another VM, which set it as its own while this one was being made");
    }
  }

  private insert(record: VmRecord): void {
    const { qid, uuid, name, klass, createdAt } = record;
    this.store.vms.insert({ qid, uuid, name, klass, createdAt });
    for (const [property, value] of Object.entries(record.properties)) this.store.vms.setProperty(qid, property, value);
  }

  /** Tags a new VM created-by-<caller>, tells of it, and remembers the request that made it. */
  private announce(record: VmRecord, birth: Birth): Vm {
    const tag = createdByTag(birth.ctx.caller);
    this.store.vms.addTag(record.qid, tag);
    this.events.append(domainAdd(record), domainTagAdd(record, tag));
    this.ledger.remember(birth.key, birth.rpc, birth.request, record.uuid);
    return this.readModel.full(this.store.vms.byQid(record.qid)!);
  }
}
