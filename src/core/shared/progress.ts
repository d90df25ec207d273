/**
 * How long work tells how far it has got: `done` of `total` in the unit its operation counts
 * (0 total while not known yet). Work that is no operation reports to no one.
 */
export type ProgressReporter = (done: number, total: number) => void;

/** A reporter that tells no one, for work that runs as no operation. */
export const unreported: ProgressReporter = () => undefined;
