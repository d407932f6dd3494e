//! PostgreSQL (`spin:postgres`, and the `postgres` crate natively): `$N` placeholders,
//! BIGINT milliseconds, BYTEA hashes, and locks that hold across replicas.
//!
//! Per-user limit. A create runs, inside one READ COMMITTED transaction,
//! `pg_advisory_xact_lock(class, hashtext(user_id))` and only then the guarded insert that
//! counts and inserts (evicting first, in the same transaction, when it finds the user full):
//! four statements, `BEGIN`, the lock, the insert and `COMMIT`. The lock needs a statement of
//! its own, before the count's, for READ COMMITTED takes a snapshot per statement and the
//! count must be taken after the lock is granted. The lock, not a row lock, because there is nothing to lock before a user's
//! first session: `SELECT … FOR UPDATE` over the user's rows locks no row when there are
//! none, so two first creates would both pass, and a per-user row would need its own table,
//! upsert and cleanup. The advisory lock needs no row, is held only by that user's creates
//! (other users and every read go on), and ends with the transaction, also when a replica
//! dies mid-way. READ COMMITTED is explicit because the count after the lock must see what
//! the previous holder committed: each statement takes a new snapshot there, where
//! REPEATABLE READ would keep the one taken before the lock was granted. Two users whose
//! ids hash alike share a lock, which only makes them wait for each other.
//!
//! Rotation needs no lock: the conditional `UPDATE … WHERE secret_hash = $2` re-checks its
//! condition on the row version a concurrent rotate committed, so exactly one wins.
//!
//! Cleanup deletes batches chosen with `FOR UPDATE SKIP LOCKED`: replicas cleaning at once
//! take disjoint rows, so each row is deleted once, and they never wait for one another.
//! Validates only read (MVCC reads take no row locks), so cleanup never blocks them.
//!
//! Migrations run under a transaction-scoped advisory lock of their own class, so replicas
//! starting together apply each one once; DDL is transactional here, so a failed migration
//! leaves nothing half-made.

use super::Dialect;

pub static POSTGRES: Dialect = Dialect {
    name: "postgres",
    begin: "BEGIN ISOLATION LEVEL READ COMMITTED",
    // The first key of the two-key form is a class of our own: 5918533 is "ZOE" in ASCII
    // (0x5A4F45), 5918534 the next, so neither meets another application's locks.
    lock_user: Some("SELECT pg_advisory_xact_lock(5918533, hashtext($1))"),
    single_statement_limit: false,
    lock_migrations: Some("SELECT pg_advisory_xact_lock(5918534, 0)"),
    create_version_table: "CREATE TABLE IF NOT EXISTS zoe_schema (version BIGINT NOT NULL)",
    schema_version: "SELECT coalesce(max(version), 0)::BIGINT FROM zoe_schema",
    clear_version: "DELETE FROM zoe_schema",
    insert_version: "INSERT INTO zoe_schema (version) VALUES ($1)",
    migrations: &[
        // 1: as SQLite's, with BIGINT times and a BYTEA hash. `IF NOT EXISTS` and the upsert
        // keep it harmless should the version row ever be lost.
        &[
            "CREATE TABLE IF NOT EXISTS sessions (
                id TEXT PRIMARY KEY NOT NULL,
                secret_hash BYTEA NOT NULL,
                user_id TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                last_activity BIGINT NOT NULL,
                expires_at BIGINT NOT NULL,
                absolute_expires_at BIGINT NOT NULL,
                idle_timeout BIGINT NOT NULL,
                metadata TEXT NOT NULL
            )",
            "CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user_id, last_activity)",
            "CREATE INDEX IF NOT EXISTS sessions_by_expiry ON sessions (expires_at)",
            "CREATE TABLE IF NOT EXISTS zoe_state (key TEXT PRIMARY KEY NOT NULL, \
             value BIGINT NOT NULL)",
            "INSERT INTO zoe_state (key, value) VALUES ('last_cleanup_at', 0) \
             ON CONFLICT (key) DO NOTHING",
        ],
        // 2: stolen-token detection: the secret a rotate replaced, and when.
        &[
            "ALTER TABLE sessions ADD COLUMN IF NOT EXISTS previous_secret_hash BYTEA",
            "ALTER TABLE sessions ADD COLUMN IF NOT EXISTS rotated_at BIGINT NOT NULL DEFAULT 0",
        ],
        // 3: devices: the client's address and user agent at create and activity writes.
        &[
            "ALTER TABLE sessions ADD COLUMN IF NOT EXISTS client_addr TEXT",
            "ALTER TABLE sessions ADD COLUMN IF NOT EXISTS user_agent TEXT",
        ],
        // 4: the users-in-range scan (a prefix search) compares in byte order, `COLLATE "C"`;
        // `sessions_by_user` is in the database's collation, so under any other (en_US, ICU)
        // it cannot serve that range and the scan read the whole table. Equality on user_id
        // keeps using `sessions_by_user`.
        &["CREATE INDEX IF NOT EXISTS sessions_by_user_bytes ON sessions (user_id COLLATE \"C\")"],
    ],

    find: "SELECT id, secret_hash, user_id, created_at, last_activity, expires_at, \
           absolute_expires_at, idle_timeout, metadata, previous_secret_hash, rotated_at, \
           client_addr, user_agent \
           FROM sessions WHERE id = $1",
    // The casts give each parameter its column's type, which a `SELECT` list cannot infer.
    insert_within_limit: "INSERT INTO sessions (id, secret_hash, user_id, created_at, \
                          last_activity, expires_at, absolute_expires_at, idle_timeout, \
                          metadata, client_addr, user_agent) \
                          SELECT $1::TEXT, $2::BYTEA, $3::TEXT, $4::BIGINT, $5::BIGINT, \
                          $6::BIGINT, $7::BIGINT, $8::BIGINT, $9::TEXT, $10::TEXT, $11::TEXT \
                          WHERE (SELECT count(*) FROM sessions \
                                 WHERE user_id = $3::TEXT AND expires_at > $12::BIGINT) \
                                < $13::BIGINT \
                          RETURNING (SELECT value FROM zoe_state \
                                     WHERE key = 'last_cleanup_at') AS last_cleanup_at",
    record_activity: "UPDATE sessions SET last_activity = $3, expires_at = $4, \
                      client_addr = coalesce($5, client_addr), \
                      user_agent = coalesce($6, user_agent) \
                      WHERE id = $1 AND secret_hash = $2",
    set_expiry: "UPDATE sessions SET expires_at = $3 WHERE id = $1 AND secret_hash = $2",
    replace_secret: "UPDATE sessions SET secret_hash = $3, previous_secret_hash = $8, \
                     rotated_at = $4, last_activity = $4, expires_at = $5, \
                     client_addr = coalesce($6, client_addr), \
                     user_agent = coalesce($7, user_agent) \
                     WHERE id = $1 AND secret_hash = $2",
    delete: "DELETE FROM sessions WHERE id = $1",
    delete_reused: "DELETE FROM sessions WHERE id = $1 AND previous_secret_hash = $2",
    delete_user: "DELETE FROM sessions WHERE user_id = $1 AND id IS DISTINCT FROM $2",
    delete_all: "DELETE FROM sessions",
    list_user: "SELECT id, secret_hash, user_id, created_at, last_activity, expires_at, \
                absolute_expires_at, idle_timeout, metadata, previous_secret_hash, rotated_at, \
           client_addr, user_agent \
                FROM sessions \
                WHERE user_id = $1 AND expires_at > $2 \
                ORDER BY last_activity DESC, created_at DESC",
    user_ids_by_age: "SELECT id FROM sessions WHERE user_id = $1 AND expires_at > $2 \
                      ORDER BY last_activity ASC, created_at ASC",
    delete_expired: "DELETE FROM sessions WHERE id IN \
                     (SELECT id FROM sessions WHERE expires_at <= $1 \
                      LIMIT $2 FOR UPDATE SKIP LOCKED)",
    stats: "SELECT \
              (SELECT count(*) FROM sessions WHERE expires_at > $1), \
              (SELECT count(DISTINCT user_id) FROM sessions WHERE expires_at > $1), \
              (SELECT count(*) FROM sessions WHERE expires_at <= $1), \
              (SELECT value FROM zoe_state WHERE key = 'last_cleanup_at')",
    // Byte order (`COLLATE "C"`), as in SQLite: in a linguistic collation a prefix is not
    // one range (`Alice` sorts between `al` and `am` under en_US). `sessions_by_user_bytes`
    // (migration 4) serves the range under any database collation.
    users_in_range: "SELECT user_id, count(*), max(last_activity) FROM sessions \
                     WHERE user_id COLLATE \"C\" >= $1 AND user_id COLLATE \"C\" < $2 \
                     AND user_id <> $3 AND expires_at > $4 \
                     GROUP BY user_id ORDER BY user_id COLLATE \"C\" LIMIT $5",
    // A concurrent claimer waits for the row, then re-checks `value <= $2` on the committed
    // version and finds it no longer holds: one claim wins across replicas.
    claim_cleanup: "UPDATE zoe_state SET value = $1 \
                    WHERE key = 'last_cleanup_at' AND value <= $2",
    mark_cleanup: "UPDATE zoe_state SET value = $1 WHERE key = 'last_cleanup_at'",
};

/// SQLSTATEs that mean the server cannot serve us now: connection exceptions (class 08),
/// shutdown or start-up in progress (57P01-57P03), too many connections (53300).
pub fn unavailable_code(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

/// A failure without SQLSTATE that is the host losing its server: hosts pass tokio-postgres
/// errors on as text, Spin in their `Display` form, ours in their `Debug` form (`kind: Closed`),
/// and a connection pool's failures as `other`. Shared by the `spin:postgres` executors of
/// both shells.
pub fn lost_connection(text: &str) -> bool {
    [
        "connection closed",
        "error communicating with the server",
        "error connecting",
        "timeout",
        "timed out",
        "kind: Closed",
        "kind: Io",
        "kind: Connect",
        "kind: Timeout",
        "pool",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}
