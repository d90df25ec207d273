import type { Database } from "better-sqlite3";

/**
 * Versioned schema migrations, applied in order at start, each in its own transaction.
 * A migration is never edited once released: change the schema with a new one.
 */
export interface Migration {
  version: number;
  name: string;
  up: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "host",
    up: `
      CREATE TABLE host (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        host_id     TEXT NOT NULL,
        created_at  TEXT NOT NULL
      );
    `,
  },
];

/** Applies the migrations not applied yet; returns the versions it applied. */
export function migrate(db: Database, migrations: readonly Migration[] = MIGRATIONS): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  TEXT NOT NULL
  )`);
  const current = (db.prepare("SELECT MAX(version) AS v FROM schema_migrations").get() as { v: number | null }).v ?? 0;
  const newest = migrations.reduce((max, m) => Math.max(max, m.version), 0);
  if (current > newest) {
    throw new Error(
      `the state was written by a newer Steward (schema version ${current}, this one knows up to ${newest}); ` +
        "upgrade Steward instead of downgrading it",
    );
  }
  const record = db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)");
  const applied: number[] = [];
  for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
    if (migration.version <= current) continue;
    db.transaction(() => {
      db.exec(migration.up);
      record.run(migration.version, migration.name, new Date().toISOString());
    })();
    applied.push(migration.version);
  }
  return applied;
}
