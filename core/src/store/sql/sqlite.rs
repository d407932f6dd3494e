//! SQLite (`spin:sqlite`, and rusqlite natively): `?N` placeholders, and `BEGIN IMMEDIATE`,
//! which takes the database's single write lock up front, so concurrent writers queue
//! (behind `busy_timeout`) instead of deadlocking on a lock upgrade. With one writer at a
//! time no per-user lock is needed, and a create below the limit is one guarded `INSERT`
//! without a transaction: a write statement takes the write lock at its start, so its count
//! and its insert see no other writer in between.
//!
//! No connection set-up statement: the 5 s busy timeout that makes concurrent writers queue
//! is already set on every connection by each host that runs us: Spin's SQLite opens its
//! connections with rusqlite, whose `Connection::open` sets `sqlite3_busy_timeout(5000)`
//! (spin `crates/sqlite-inproc`), and our host and native executor set the same. A
//! `PRAGMA busy_timeout` per instance was one statement more on every fresh instance.

use super::Dialect;

pub static SQLITE: Dialect = Dialect {
    name: "sqlite",
    begin: "BEGIN IMMEDIATE",
    lock_user: None,
    single_statement_limit: true,
    lock_migrations: None,
    create_version_table: "CREATE TABLE IF NOT EXISTS zoe_schema (version INTEGER NOT NULL)",
    schema_version: "SELECT coalesce(max(version), 0) FROM zoe_schema",
    clear_version: "DELETE FROM zoe_schema",
    insert_version: "INSERT INTO zoe_schema (version) VALUES (?1)",
    migrations: &[
        // 1: sessions, indexed by token id (primary key), user and expiry; a state table.
        &[
            "CREATE TABLE sessions (
                id TEXT PRIMARY KEY NOT NULL,
                secret_hash BLOB NOT NULL,
                user_id TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                last_activity INTEGER NOT NULL,
                expires_at INTEGER NOT NULL,
                absolute_expires_at INTEGER NOT NULL,
                idle_timeout INTEGER NOT NULL,
                metadata TEXT NOT NULL
            )",
            "CREATE INDEX sessions_by_user ON sessions (user_id, last_activity)",
            "CREATE INDEX sessions_by_expiry ON sessions (expires_at)",
            "CREATE TABLE zoe_state (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL)",
            "INSERT INTO zoe_state (key, value) VALUES ('last_cleanup_at', 0)",
        ],
        // 2: stolen-token detection: the secret a rotate replaced, and when.
        &[
            "ALTER TABLE sessions ADD COLUMN previous_secret_hash BLOB",
            "ALTER TABLE sessions ADD COLUMN rotated_at INTEGER NOT NULL DEFAULT 0",
        ],
        // 3: devices: the client's address and user agent at create and activity writes.
        &[
            "ALTER TABLE sessions ADD COLUMN client_addr TEXT",
            "ALTER TABLE sessions ADD COLUMN user_agent TEXT",
        ],
        // 4: nothing here. PostgreSQL's byte-order index for the users-in-range scan; SQLite
        // compares text in byte order (BINARY) already, so `sessions_by_user` serves it.
        &[],
    ],

    find: "SELECT id, secret_hash, user_id, created_at, last_activity, expires_at, \
           absolute_expires_at, idle_timeout, metadata, previous_secret_hash, rotated_at, \
           client_addr, user_agent \
           FROM sessions WHERE id = ?1",
    // One statement reads the count and writes the row under the write lock it takes at its
    // start (as `BEGIN IMMEDIATE` does, behind the same busy timeout), so it is atomic without
    // a transaction.
    insert_within_limit: "INSERT INTO sessions (id, secret_hash, user_id, created_at, \
                          last_activity, expires_at, absolute_expires_at, idle_timeout, \
                          metadata, client_addr, user_agent) \
                          SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11 \
                          WHERE (SELECT count(*) FROM sessions \
                                 WHERE user_id = ?3 AND expires_at > ?12) < ?13 \
                          RETURNING (SELECT value FROM zoe_state \
                                     WHERE key = 'last_cleanup_at')",
    record_activity: "UPDATE sessions SET last_activity = ?3, expires_at = ?4, \
                      client_addr = coalesce(?5, client_addr), \
                      user_agent = coalesce(?6, user_agent) \
                      WHERE id = ?1 AND secret_hash = ?2",
    set_expiry: "UPDATE sessions SET expires_at = ?3 WHERE id = ?1 AND secret_hash = ?2",
    replace_secret: "UPDATE sessions SET secret_hash = ?3, previous_secret_hash = ?8, \
                     rotated_at = ?4, last_activity = ?4, expires_at = ?5, \
                     client_addr = coalesce(?6, client_addr), \
                     user_agent = coalesce(?7, user_agent) \
                     WHERE id = ?1 AND secret_hash = ?2",
    delete: "DELETE FROM sessions WHERE id = ?1",
    delete_reused: "DELETE FROM sessions WHERE id = ?1 AND previous_secret_hash = ?2",
    delete_user: "DELETE FROM sessions WHERE user_id = ?1 AND id IS NOT ?2",
    delete_all: "DELETE FROM sessions",
    list_user: "SELECT id, secret_hash, user_id, created_at, last_activity, expires_at, \
                absolute_expires_at, idle_timeout, metadata, previous_secret_hash, rotated_at, \
           client_addr, user_agent \
                FROM sessions \
                WHERE user_id = ?1 AND expires_at > ?2 \
                ORDER BY last_activity DESC, created_at DESC",
    user_ids_by_age: "SELECT id FROM sessions WHERE user_id = ?1 AND expires_at > ?2 \
                      ORDER BY last_activity ASC, created_at ASC",
    // One bounded statement: the write lock is held for one batch, not for the whole cleanup.
    delete_expired: "DELETE FROM sessions WHERE rowid IN \
                     (SELECT rowid FROM sessions WHERE expires_at <= ?1 LIMIT ?2)",
    stats: "SELECT \
              (SELECT count(*) FROM sessions WHERE expires_at > ?1), \
              (SELECT count(DISTINCT user_id) FROM sessions WHERE expires_at > ?1), \
              (SELECT count(*) FROM sessions WHERE expires_at <= ?1), \
              (SELECT value FROM zoe_state WHERE key = 'last_cleanup_at')",
    // TEXT compares with the BINARY collation, byte order, which is the order of the
    // `sessions_by_user` index: the range is an index range.
    users_in_range: "SELECT user_id, count(*), max(last_activity) FROM sessions \
                     WHERE user_id >= ?1 AND user_id < ?2 AND user_id <> ?3 AND expires_at > ?4 \
                     GROUP BY user_id ORDER BY user_id LIMIT ?5",
    // A conditional update: of several concurrent callers only one sees the old value.
    claim_cleanup: "UPDATE zoe_state SET value = ?1 \
                    WHERE key = 'last_cleanup_at' AND value <= ?2",
    mark_cleanup: "UPDATE zoe_state SET value = ?1 WHERE key = 'last_cleanup_at'",
};
