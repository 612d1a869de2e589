// The worker's SQLite schema. Every version of every resource is a row of `versions` (a
// delete is a version without JSON); `resources` points at each resource's current version;
// the idx_* tables hold the search index of current, non-deleted versions only, one table
// per search parameter kind, keyed by the resource's rid.

/** PRAGMA application_id of a fhirguard database ("FHGD"): refuses to write into some other file. */
export const APPLICATION_ID = 0x46484744;
/** PRAGMA user_version of this layout. */
export const SCHEMA_VERSION = 1;

export const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS resources (
  rid INTEGER PRIMARY KEY,
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  version INTEGER NOT NULL,
  last_updated INTEGER NOT NULL,
  deleted INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  UNIQUE (type, id)
);
CREATE INDEX IF NOT EXISTS resources_updated ON resources (type, last_updated);

CREATE TABLE IF NOT EXISTS versions (
  seq INTEGER PRIMARY KEY,
  rid INTEGER NOT NULL,
  version INTEGER NOT NULL,
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  last_updated INTEGER NOT NULL,
  method TEXT NOT NULL,
  json TEXT,
  UNIQUE (rid, version)
);
CREATE INDEX IF NOT EXISTS versions_type ON versions (type, seq);

CREATE TABLE IF NOT EXISTS idx_string (rid INTEGER NOT NULL, type TEXT NOT NULL, code TEXT NOT NULL, norm TEXT NOT NULL, exact TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS idx_string_value ON idx_string (type, code, norm);
CREATE INDEX IF NOT EXISTS idx_string_rid ON idx_string (rid);

CREATE TABLE IF NOT EXISTS idx_token (rid INTEGER NOT NULL, type TEXT NOT NULL, code TEXT NOT NULL, system TEXT, value TEXT, text TEXT);
CREATE INDEX IF NOT EXISTS idx_token_value ON idx_token (type, code, value, system);
CREATE INDEX IF NOT EXISTS idx_token_rid ON idx_token (rid);

CREATE TABLE IF NOT EXISTS idx_reference (rid INTEGER NOT NULL, type TEXT NOT NULL, code TEXT NOT NULL, target_type TEXT, target_id TEXT, url TEXT);
CREATE INDEX IF NOT EXISTS idx_reference_target ON idx_reference (type, code, target_type, target_id);
CREATE INDEX IF NOT EXISTS idx_reference_url ON idx_reference (type, code, url);
CREATE INDEX IF NOT EXISTS idx_reference_rid ON idx_reference (rid);
CREATE INDEX IF NOT EXISTS idx_reference_back ON idx_reference (target_type, target_id);

CREATE TABLE IF NOT EXISTS idx_date (rid INTEGER NOT NULL, type TEXT NOT NULL, code TEXT NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS idx_date_value ON idx_date (type, code, lo);
CREATE INDEX IF NOT EXISTS idx_date_rid ON idx_date (rid);

CREATE TABLE IF NOT EXISTS idx_number (rid INTEGER NOT NULL, type TEXT NOT NULL, code TEXT NOT NULL, value REAL NOT NULL);
CREATE INDEX IF NOT EXISTS idx_number_value ON idx_number (type, code, value);
CREATE INDEX IF NOT EXISTS idx_number_rid ON idx_number (rid);

CREATE TABLE IF NOT EXISTS idx_quantity (rid INTEGER NOT NULL, type TEXT NOT NULL, code TEXT NOT NULL, value REAL NOT NULL, system TEXT, unit_code TEXT, unit TEXT);
CREATE INDEX IF NOT EXISTS idx_quantity_value ON idx_quantity (type, code, value);
CREATE INDEX IF NOT EXISTS idx_quantity_rid ON idx_quantity (rid);

CREATE TABLE IF NOT EXISTS idx_uri (rid INTEGER NOT NULL, type TEXT NOT NULL, code TEXT NOT NULL, value TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS idx_uri_value ON idx_uri (type, code, value);
CREATE INDEX IF NOT EXISTS idx_uri_rid ON idx_uri (rid);
`;

/** The index table of each parameter kind. */
export const INDEX_TABLES = {
  string: 'idx_string',
  token: 'idx_token',
  reference: 'idx_reference',
  date: 'idx_date',
  number: 'idx_number',
  quantity: 'idx_quantity',
  uri: 'idx_uri',
} as const;
