/**
 * Undo on failure, as Incus' shared/revert: each step of a multi-step change adds how to undo
 * it; when a later step fails, fail() undoes the steps done so far, the latest first, so that
 * nothing is left half-made; once every step is done, success() forgets them.
 */

/** How to undo one step. */
export type Undo = () => void | Promise<void>;

export class Revert {
  private undos: Undo[] = [];

  /** @param undoFailed told of an undo that failed: the others still run. */
  constructor(private readonly undoFailed: (error: unknown) => void = () => undefined) {}

  /** Adds the undo of a step just done; nothing when the step has nothing to undo. */
  add(undo: Undo | void | undefined): void {
    if (undo) this.undos.push(undo);
  }

  /** Undoes every step added, in reverse order. */
  async fail(): Promise<void> {
    const undos = this.undos.reverse();
    this.undos = [];
    for (const undo of undos) {
      try {
        await undo();
      } catch (error) {
        this.undoFailed(error);
      }
    }
  }

  /** The change is complete: its steps are no longer undone. */
  success(): void {
    this.undos = [];
  }

  /**
   * Runs `work` with a fresh Revert: when it throws, the steps it added are undone before the
   * error goes on; when it returns, they are kept.
   */
  static async run<T>(work: (revert: Revert) => Promise<T>, undoFailed?: (error: unknown) => void): Promise<T> {
    const revert = new Revert(undoFailed);
    try {
      const result = await work(revert);
      revert.success();
      return result;
    } catch (error) {
      await revert.fail();
      throw error;
    }
  }
}
