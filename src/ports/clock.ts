/** The clock port, so that the core's notion of time can be controlled in tests. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
