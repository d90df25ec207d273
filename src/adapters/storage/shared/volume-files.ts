import { promises as fs } from "node:fs";
import path from "node:path";
import { isValidVid } from "../../../ports/storage-driver";
import { revisionNotFound, volumeExists, volumeNotFound } from "../../../ports/storage-errors";
import { isErrno, removeFile, type PoolFolder } from "./pool-folder";

/** A revision id: decimal, the milliseconds of its making (bumped past the newest). */
const REVISION_ID = /^[0-9]+$/;

/**
 * How the drivers that keep each volume as a file name them, in Qubes' layout: `<vid><suffix>`
 * is a volume's content, `<vid><suffix>.<id>~` its revisions. "~" is in no vid, so no volume's
 * file can be taken for a revision.
 */
export class VolumeFiles {
  private readonly revision: RegExp;

  constructor(
    readonly pool: PoolFolder,
    private readonly suffix: string,
  ) {
    this.revision = new RegExp(`^(?<volume>.+${suffix.replace(/[.]/g, "\\.")})\\.(?<id>[0-9]+)~$`);
  }

  /** Every volume's vid, sorted; files whose names are no vid (someone else's) are left out. */
  async list(): Promise<string[]> {
    const vids = (await this.pool.files()).filter((file) => file.endsWith(this.suffix)).map((file) => file.slice(0, -this.suffix.length));
    return vids.filter(isValidVid).sort();
  }

  /** The file of an existing volume; NOT_FOUND (VOLUME_NOT_FOUND) when there is none. */
  async existing(vid: string): Promise<string> {
    const file = await this.pool.fileOf(vid, this.suffix);
    if (!(await this.pool.regularFile(vid, file))) throw volumeNotFound(vid);
    return file;
  }

  /** The file of `vid` if it exists, else undefined. */
  async ifExists(vid: string): Promise<string | undefined> {
    const file = await this.pool.fileOf(vid, this.suffix);
    return (await this.pool.regularFile(vid, file)) ? file : undefined;
  }

  /** Where `vid`'s content goes, whether it exists or not, its folders made; a symlink planted there is refused, not replaced. */
  async place(vid: string): Promise<string> {
    const file = await this.pool.fileOf(vid, this.suffix, { makeFolders: true });
    await this.pool.regularFile(vid, file);
    return file;
  }

  /**
   * Where a new volume `vid` goes: ALREADY_EXISTS (VOLUME_EXISTS) when it exists. `inNewFolder`
   * when its folder was made just now: no revision or leftover of an earlier volume can be
   * beside it (a VM's first volume in its own folder).
   */
  async fresh(vid: string): Promise<{ file: string; inNewFolder: boolean }> {
    const place = await this.pool.newFileOf(vid, this.suffix);
    if (!place.inNewFolder && (await this.pool.regularFile(vid, place.file))) throw volumeExists(vid);
    return place;
  }

  /**
   * Makes the new volume's `file` from a temporary that `make` writes, then links into place:
   * a link fails when the name is taken, so two creates of one vid cannot both succeed, and a
   * crash leaves no half-made volume. ALREADY_EXISTS (VOLUME_EXISTS) when it lost that race.
   */
  async createFrom(vid: string, file: string, make: (temporary: string) => Promise<void>): Promise<void> {
    const temporary = this.pool.temporary(this.suffix);
    try {
      await make(temporary);
      await fs.link(temporary, file);
    } catch (error) {
      if (isErrno(error, "EEXIST")) throw volumeExists(vid);
      throw error;
    } finally {
      await removeFile(temporary);
    }
  }

  /**
   * Makes the new volume's `file` in a folder made just now (fresh's inNewFolder), by `make`
   * there at once: no one else can have the name, and a crash leaves a file that its volume's
   * record, still being made, has the next start remove.
   */
  async createInNewFolder(vid: string, file: string, make: (file: string) => Promise<void>): Promise<void> {
    try {
      await make(file);
    } catch (error) {
      // Someone else's file is left alone; a part-made one of this call's goes.
      if (isErrno(error, "EEXIST")) throw volumeExists(vid);
      await removeFile(file);
      throw error;
    }
  }

  /**
   * Deletes the volume whose file is `file`: renamed out of the way first, so that the volume is
   * gone at once, then `dropRevisions` (a crash before it ends leaves revisions that the next
   * create of the vid removes), then the file itself.
   */
  async deleteWith(file: string, dropRevisions: () => Promise<void>): Promise<void> {
    const doomed = this.pool.temporary(this.suffix);
    await fs.rename(file, doomed);
    await dropRevisions();
    await removeFile(doomed);
  }

  isRevision(name: string): boolean {
    return this.revision.test(name);
  }

  revisionFile(file: string, id: string): string {
    return `${file}.${id}~`;
  }

  /** The ids of the revisions of the volume whose file is `file`, oldest first. */
  async revisionIds(file: string): Promise<string[]> {
    const name = path.basename(file);
    const ids = (await this.pool.siblings(file)).flatMap((sibling) => {
      const match = this.revision.exec(sibling);
      return match?.groups?.volume === name ? [match.groups.id] : [];
    });
    return ids.sort((a, b) => Number(a) - Number(b));
  }

  /** A revision's file; undefined when the volume has no such revision. */
  async savedRevision(vid: string, file: string, revision: string): Promise<string | undefined> {
    if (!REVISION_ID.test(revision)) return undefined;
    const saved = this.revisionFile(file, revision);
    return (await this.pool.regularFile(vid, saved)) ? saved : undefined;
  }

  /** A revision's file; NOT_FOUND (REVISION_NOT_FOUND) when the volume has no such revision. */
  async revisionPath(vid: string, file: string, revision: string): Promise<string> {
    const saved = await this.savedRevision(vid, file, revision);
    if (saved === undefined) throw revisionNotFound(vid, revision);
    return saved;
  }

  /** An id for a new revision: now, or past the newest when the clock has not moved on (or went back). */
  async nextRevisionId(file: string, now: Date): Promise<string> {
    const ids = await this.revisionIds(file);
    return String(Math.max(now.getTime(), ...ids.map((id) => Number(id) + 1)));
  }
}
