import type { VmRecord } from "../model/vm-record";
import { etagMismatch, invalidEtag } from "./vm-errors";

/**
 * A VM as a mutation names it, with the etag the caller read it with (AIP-154): the mutation
 * goes ahead only while the VM still has that etag. A bare string names the VM with no such
 * precondition.
 */
export type VmTarget = string | { readonly vm: string; readonly etag: string };

/** The VM reference and the expected etag ("" for none) of a target. */
export function splitTarget(target: VmTarget): { vm: string; etag: string } {
  return typeof target === "string" ? { vm: target, etag: "" } : target;
}

/** A target that carries `etag` when the request gave one. */
export function vmTarget(vm: string, etag: string): VmTarget {
  return etag === "" ? vm : { vm, etag };
}

const ETAG = /^"-?[0-9a-f]{1,14}"$/;

/**
 * The VM's etag: a strong entity tag (RFC 9110 form, quotes included) of what is stored of the
 * VM itself, its name, class, properties set, tags and features, that changes with every write
 * to them and only then. It does not follow the power state nor the defaults the VM inherits
 * (a template's or a global's), which are not the VM's to write.
 */
export function etagOf(vm: Pick<VmRecord, "revision">): string {
  return `"${vm.revision.toString(16)}"`;
}

/** Refuses the mutation (ABORTED, ETAG_MISMATCH) when the VM has changed since the caller read it. */
export function requireEtag(vm: VmRecord, expected: string): void {
  if (expected === "") return;
  if (!ETAG.test(expected)) throw invalidEtag(expected);
  if (expected !== etagOf(vm)) throw etagMismatch(vm.name, expected);
}
