import { MAX_DISPID } from "./properties/property-schema";

/** A random whole number from 0 to bound - 1: the system's, or a test's. */
export type RandomBelow = (bound: number) => number;

export const systemRandomBelow: RandomBelow = (bound) => crypto.getRandomValues(new Uint32Array(1))[0] % bound;

/** How many random dispids are drawn before the free ones are looked for in turn (Qubes: √max). */
const RANDOM_DRAWS = Math.ceil(Math.sqrt(MAX_DISPID));

/**
 * A DispVM number, random from 1 to MAX_DISPID - 1, as Qubes' get_new_unused_dispid draws it,
 * among those `taken` does not refuse; undefined when every one is taken. Random so that a
 * DispVM's name says nothing of how many came before it; after a few draws that all hit taken
 * numbers, the free ones are looked for in turn from a random start, so a crowded range still
 * finds the last free number.
 */
export function chooseDispid(taken: (dispid: number) => boolean, randomBelow: RandomBelow = systemRandomBelow): number | undefined {
  const span = MAX_DISPID - 1;
  for (let draw = 0; draw < RANDOM_DRAWS; draw++) {
    const dispid = 1 + randomBelow(span);
    if (!taken(dispid)) return dispid;
  }
  const start = randomBelow(span);
  for (let step = 0; step < span; step++) {
    const dispid = 1 + ((start + step) % span);
    if (!taken(dispid)) return dispid;
  }
  return undefined;
}
