import type { Store } from "../../ports/store";
import { vmExists, vmExistsButForCase } from "./vm-errors";

/**
 * Refuses a name that another VM has, or has but for the case of its letters: host names are
 * compared without case, so two VMs must not be told apart by it. `self` is the VM being renamed,
 * which may change the case of its own name.
 */
export function requireFreeName(store: Store, name: string, self?: number): void {
  const folded = store.vms.byNameAnyCase(name);
  if (!folded) return;
  if (folded.name === name) throw vmExists(name);
  if (folded.qid !== self) throw vmExistsButForCase(name, folded.name);
}
