import type { VmClassName } from "./vm-classes";

/** A VM as stored: what it is, and the properties set on it (defaults are the core's). */
export interface VmRecord {
  qid: number;
  uuid: string;
  name: string;
  klass: VmClassName;
  createdAt: Date;
  /** When the VM's record was last written: when its revision last changed. */
  updatedAt: Date;
  /**
   * Changes with every write to the VM (its row, properties, tags or features), and only then:
   * with its uuid, it says whether what was derived from the record still holds.
   */
  revision: number;
  /** Properties explicitly set, as their stored text (a VM reference is the VM's qid). */
  properties: Readonly<Record<string, string>>;
  tags: readonly string[];
}

/** What a listing of VMs may select by, besides their power state. */
export interface VmFilter {
  klass?: VmClassName;
  tag?: string;
  label?: string;
}

/** What a new VM is known by before it exists: fixed once, so its participants and its record agree. */
export interface VmIdentity {
  qid: number;
  uuid: string;
  createdAt: Date;
}

/** The record of a VM being drafted, before any property but those given is set. */
export function draftRecord(identity: VmIdentity, name: string, klass: VmClassName, properties: Readonly<Record<string, string>>): VmRecord {
  return { ...identity, name, klass, updatedAt: identity.createdAt, revision: 0, properties, tags: [] };
}

/** The record with one more property set (as its stored text). */
export function withProperty(record: VmRecord, name: string, text: string): VmRecord {
  return { ...record, properties: { ...record.properties, [name]: text } };
}
