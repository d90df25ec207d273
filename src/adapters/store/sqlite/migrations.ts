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
  {
    version: 2,
    name: "vms, labels, events",
    up: `
      CREATE TABLE labels (
        name     TEXT PRIMARY KEY,
        color    INTEGER NOT NULL,
        idx      INTEGER NOT NULL UNIQUE,
        builtin  INTEGER NOT NULL
      );
      INSERT INTO labels (name, color, idx, builtin) VALUES
        ('red', ${0xcc0000}, 1, 1), ('orange', ${0xf57900}, 2, 1), ('yellow', ${0xedd400}, 3, 1),
        ('green', ${0x73d216}, 4, 1), ('gray', ${0x555753}, 5, 1), ('blue', ${0x3465a4}, 6, 1),
        ('purple', ${0x75507b}, 7, 1), ('black', ${0x000000}, 8, 1);

      CREATE TABLE vms (
        qid         INTEGER PRIMARY KEY,
        uuid        TEXT NOT NULL UNIQUE,
        name        TEXT NOT NULL UNIQUE,
        klass       TEXT NOT NULL,
        created_at  TEXT NOT NULL
      );
      INSERT INTO vms (qid, uuid, name, klass, created_at)
        VALUES (0, '00000000-0000-0000-0000-000000000000', 'dom0', 'AdminVM', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));

      CREATE TABLE vm_properties (
        qid    INTEGER NOT NULL REFERENCES vms (qid) ON DELETE CASCADE,
        name   TEXT NOT NULL,
        value  TEXT NOT NULL,
        PRIMARY KEY (qid, name)
      );
      CREATE INDEX vm_properties_by_value ON vm_properties (name, value);
      INSERT INTO vm_properties (qid, name, value) VALUES (0, 'label', 'black');

      CREATE TABLE vm_tags (
        qid  INTEGER NOT NULL REFERENCES vms (qid) ON DELETE CASCADE,
        tag  TEXT NOT NULL,
        PRIMARY KEY (qid, tag)
      );
      CREATE INDEX vm_tags_by_tag ON vm_tags (tag);

      CREATE TABLE events (
        sequence  INTEGER PRIMARY KEY AUTOINCREMENT,
        time      TEXT NOT NULL,
        subject   TEXT NOT NULL,
        name      TEXT NOT NULL,
        kwargs    TEXT NOT NULL
      );

      CREATE TABLE request_ids (
        request_id  TEXT PRIMARY KEY,
        rpc         TEXT NOT NULL,
        result      TEXT NOT NULL,
        created_at  TEXT NOT NULL
      );
    `,
  },
  {
    version: 3,
    name: "features and notes",
    up: `
      CREATE TABLE vm_features (
        qid    INTEGER NOT NULL REFERENCES vms (qid) ON DELETE CASCADE,
        name   TEXT NOT NULL,
        value  TEXT NOT NULL,
        PRIMARY KEY (qid, name)
      );
      CREATE TABLE vm_notes (
        qid    INTEGER PRIMARY KEY REFERENCES vms (qid) ON DELETE CASCADE,
        notes  TEXT NOT NULL
      );
    `,
  },
  {
    version: 4,
    name: "global properties",
    up: `
      CREATE TABLE global_properties (
        name   TEXT PRIMARY KEY,
        value  TEXT NOT NULL
      );
    `,
  },
  {
    version: 5,
    name: "vm revisions",
    // Every write to a VM — its row, properties, tags or features — gives it a new revision, so
    // that what was derived from a VM can be kept until its revision changes. Revisions are
    // random (within what a JavaScript number holds exactly) rather than counted: a counter rolls
    // back with a transaction, and the revision it handed out would come again for other contents.
    up: `
      ALTER TABLE vms ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
      CREATE TRIGGER vm_properties_revise_on_insert AFTER INSERT ON vm_properties
        BEGIN UPDATE vms SET revision = random() % 9007199254740991 WHERE qid = NEW.qid; END;
      CREATE TRIGGER vm_properties_revise_on_update AFTER UPDATE ON vm_properties
        BEGIN UPDATE vms SET revision = random() % 9007199254740991 WHERE qid = NEW.qid; END;
      CREATE TRIGGER vm_properties_revise_on_delete AFTER DELETE ON vm_properties
        BEGIN UPDATE vms SET revision = random() % 9007199254740991 WHERE qid = OLD.qid; END;
      CREATE TRIGGER vm_tags_revise_on_insert AFTER INSERT ON vm_tags
        BEGIN UPDATE vms SET revision = random() % 9007199254740991 WHERE qid = NEW.qid; END;
      CREATE TRIGGER vm_tags_revise_on_update AFTER UPDATE ON vm_tags
        BEGIN UPDATE vms SET revision = random() % 9007199254740991 WHERE qid = NEW.qid; END;
      CREATE TRIGGER vm_tags_revise_on_delete AFTER DELETE ON vm_tags
        BEGIN UPDATE vms SET revision = random() % 9007199254740991 WHERE qid = OLD.qid; END;
      CREATE TRIGGER vm_features_revise_on_insert AFTER INSERT ON vm_features
        BEGIN UPDATE vms SET revision = random() % 9007199254740991 WHERE qid = NEW.qid; END;
      CREATE TRIGGER vm_features_revise_on_update AFTER UPDATE ON vm_features
        BEGIN UPDATE vms SET revision = random() % 9007199254740991 WHERE qid = NEW.qid; END;
      CREATE TRIGGER vm_features_revise_on_delete AFTER DELETE ON vm_features
        BEGIN UPDATE vms SET revision = random() % 9007199254740991 WHERE qid = OLD.qid; END;
      CREATE TRIGGER vms_revise_on_update AFTER UPDATE OF qid, uuid, name, klass, created_at ON vms
        BEGIN UPDATE vms SET revision = random() % 9007199254740991 WHERE qid = NEW.qid; END;
    `,
  },
  {
    version: 6,
    name: "running VMs",
    // Not part of a VM's stored view: no trigger changes its revision.
    up: `
      CREATE TABLE vm_runtime (
        qid         INTEGER PRIMARY KEY REFERENCES vms (qid) ON DELETE CASCADE,
        started_at  TEXT NOT NULL,
        -- 1 from the moment it halted (recorded with its domain-shutdown) until it is settled.
        settling    INTEGER NOT NULL DEFAULT 0
      );
    `,
  },
  {
    version: 7,
    name: "the uuid of an event's VM",
    // Events from before it keep an empty uuid: a stream follows a VM by uuid from now on.
    up: `
      ALTER TABLE events ADD COLUMN subject_uuid TEXT NOT NULL DEFAULT '';
      CREATE INDEX events_by_subject ON events (subject, sequence);
    `,
  },
  {
    version: 8,
    name: "what a request_id's request asked",
    // Ids remembered before it keep an empty request: any retry with them is taken as the same.
    up: `
      ALTER TABLE request_ids ADD COLUMN request TEXT NOT NULL DEFAULT '';
      CREATE INDEX request_ids_by_age ON request_ids (created_at);
    `,
  },
  {
    version: 9,
    name: "VM names by case",
    // A new name is checked against every other but for case: without it each check scans all VMs.
    up: `
      CREATE INDEX vms_by_name_any_case ON vms (name COLLATE NOCASE);
    `,
  },
  {
    version: 10,
    name: "when a VM was last written",
    // Set with each new revision, to the store's clock (write_time(), a function the store
    // defines), so that update_time and the etag change together. VMs from before it take
    // their creation time.
    up: `
      ALTER TABLE vms ADD COLUMN updated_at TEXT NOT NULL DEFAULT '';
      UPDATE vms SET updated_at = created_at;
      CREATE TRIGGER vms_written_on_revise AFTER UPDATE OF revision ON vms
        BEGIN UPDATE vms SET updated_at = write_time() WHERE qid = NEW.qid; END;
    `,
  },
  {
    version: 11,
    name: "operations",
    up: `
      CREATE TABLE operations (
        name              TEXT PRIMARY KEY,
        kind              TEXT NOT NULL,
        method            TEXT NOT NULL,
        target            TEXT NOT NULL,
        target_uuid       TEXT NOT NULL,
        caller            TEXT NOT NULL,
        created_at        TEXT NOT NULL,
        ended_at          TEXT,
        progress_done     INTEGER NOT NULL,
        progress_total    INTEGER NOT NULL,
        progress_unit     TEXT NOT NULL,
        cancel_requested  INTEGER NOT NULL,
        outcome           TEXT NOT NULL,
        -- Once succeeded: the response's type and bytes.
        result_type       TEXT,
        result            BLOB,
        -- Once failed or cancelled: the error, as JSON.
        error             TEXT
      );
      CREATE INDEX operations_by_age ON operations (created_at DESC, name DESC);
      CREATE INDEX operations_by_end ON operations (ended_at);
    `,
  },
  {
    version: 12,
    name: "the host's secret",
    // Signs page tokens. A host from before it gets one now (randomblob, 32 bytes).
    up: `
      ALTER TABLE host ADD COLUMN secret BLOB NOT NULL DEFAULT x'';
      UPDATE host SET secret = randomblob(32);
    `,
  },
  {
    version: 13,
    name: "pools",
    up: `
      CREATE TABLE pools (
        name                TEXT PRIMARY KEY,
        driver              TEXT NOT NULL,
        -- The driver's parameters as AddPool gave them: a JSON object of strings.
        parameters          TEXT NOT NULL,
        revisions_to_keep   INTEGER NOT NULL,
        ephemeral_volatile  INTEGER NOT NULL,
        limit_bytes         INTEGER NOT NULL,
        created_at          TEXT NOT NULL
      );
    `,
  },
  {
    version: 14,
    name: "volumes",
    up: `
      CREATE TABLE volumes (
        pool               TEXT NOT NULL REFERENCES pools (name),
        vid                TEXT NOT NULL,
        -- No reference to vms: a VM's volumes are made before its record commits.
        vm_qid             INTEGER,
        name               TEXT NOT NULL,
        format             TEXT NOT NULL,
        rw                 INTEGER NOT NULL,
        snap_on_start      INTEGER NOT NULL,
        save_on_stop       INTEGER NOT NULL,
        source             TEXT NOT NULL,
        -- NULL follows the pool's.
        revisions_to_keep  INTEGER,
        ephemeral          INTEGER NOT NULL,
        limit_bytes        INTEGER NOT NULL,
        internal           INTEGER NOT NULL,
        state              TEXT NOT NULL,
        created_at         TEXT NOT NULL,
        PRIMARY KEY (pool, vid)
      );
      CREATE UNIQUE INDEX volumes_of_vms ON volumes (vm_qid, name) WHERE vm_qid IS NOT NULL;
      CREATE INDEX volumes_unsettled ON volumes (state) WHERE state != 'ready';
    `,
  },
  {
    version: 15,
    name: "volume attachments",
    up: `
      CREATE TABLE volume_attachments (
        vm_qid      INTEGER NOT NULL REFERENCES vms (qid) ON DELETE CASCADE,
        -- The disk's name in the VM.
        name        TEXT NOT NULL,
        pool        TEXT NOT NULL,
        vid         TEXT NOT NULL,
        rw          INTEGER NOT NULL,
        disk_order  INTEGER NOT NULL,
        PRIMARY KEY (vm_qid, name),
        FOREIGN KEY (pool, vid) REFERENCES volumes (pool, vid) ON DELETE CASCADE
      );
      CREATE UNIQUE INDEX volume_attachments_of_volumes ON volume_attachments (pool, vid, vm_qid);
    `,
  },
  {
    version: 16,
    name: "volume source stamps",
    up: `
      -- The source's content stamp when a snap_on_start volume was last snapshotted from it.
      ALTER TABLE volumes ADD COLUMN source_stamp TEXT NOT NULL DEFAULT '';
    `,
  },
  {
    version: 17,
    name: "block exports",
    up: `
      -- The host's NBD server, as StartNbdServer set it up: one row at most.
      CREATE TABLE nbd_server (
        only_one            INTEGER PRIMARY KEY CHECK (only_one = 1),
        address             TEXT NOT NULL,
        tls                 INTEGER NOT NULL,
        max_connections     INTEGER NOT NULL,
        tls_creds           TEXT NOT NULL,
        -- A JSON array of x509 distinguished names.
        allowed_identities  TEXT NOT NULL,
        started_at          TEXT NOT NULL
      );
      -- The exports AddBlockExport made; a volume is not deleted while one names it.
      CREATE TABLE block_exports (
        id              TEXT PRIMARY KEY,
        pool            TEXT NOT NULL,
        vid             TEXT NOT NULL,
        writable        INTEGER NOT NULL,
        writethrough    INTEGER NOT NULL,
        iothread        TEXT NOT NULL,
        fixed_iothread  INTEGER NOT NULL,
        -- The options of its type, as JSON, with the type.
        options         TEXT NOT NULL,
        shutting_down   INTEGER NOT NULL DEFAULT 0,
        created_at      TEXT NOT NULL
      );
      CREATE INDEX block_exports_of_volumes ON block_exports (pool, vid);
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
