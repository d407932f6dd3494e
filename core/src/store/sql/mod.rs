//! The SQL of each backend, one file per dialect and nothing else in them: placeholders
//! (`?N` for SQLite, `$N` for PostgreSQL), how a write transaction starts and how it is
//! serialised, batch deletes, upserts and the schema. The store picks statements from its
//! executor's [`Dialect`] by name, so both dialects bind the same parameters in the same
//! order and return the same columns.

mod postgres;
mod sqlite;

pub use postgres::{POSTGRES, lost_connection, unavailable_code};
pub use sqlite::SQLITE;

/// Every statement the store runs, in one backend's SQL.
///
/// Row-returning statements that read sessions return [`SESSION_COLUMNS`] in that order.
#[derive(Debug)]
pub struct Dialect {
    /// For messages: `sqlite` or `postgres`.
    pub name: &'static str,
    /// Starts a write transaction.
    pub begin: &'static str,
    /// Run first inside a transaction that changes one user's sessions (`?1`/`$1`: the user
    /// id), so that such transactions of one user run one at a time. `None` when
    /// [`Dialect::begin`] already serialises every writer.
    pub lock_user: Option<&'static str>,
    /// Whether [`Dialect::insert_within_limit`] alone, outside a transaction, keeps the
    /// per-user limit against concurrent creates: true where every write statement holds the
    /// database's one write lock from its start (SQLite), false where a statement counts in a
    /// snapshot other writers may have moved past (PostgreSQL, which runs it after
    /// [`Dialect::lock_user`] in a transaction).
    pub single_statement_limit: bool,
    /// Run first inside the migration transaction, so that replicas starting together
    /// migrate one at a time. `None` when [`Dialect::begin`] already does that.
    pub lock_migrations: Option<&'static str>,
    /// Creates the version table if missing.
    pub create_version_table: &'static str,
    /// One row, one integer column: the schema version (0 for a fresh database).
    pub schema_version: &'static str,
    pub clear_version: &'static str,
    /// `1`: the new version.
    pub insert_version: &'static str,
    /// Migration `n` (1-based) brings the schema from version `n - 1` to `n`; each is a
    /// list of single statements (`spin:sqlite` runs one per call).
    pub migrations: &'static [&'static [&'static str]],

    /// `1`: id.
    pub find: &'static str,
    /// Inserts a session provided its user holds fewer than `13` unexpired ones at `12` (now):
    /// `1..=9`: the [`SESSION_COLUMNS`], `10`: client address, `11`: user agent. One row when
    /// it inserted, holding the last cleanup time (or null); none when the user was full.
    pub insert_within_limit: &'static str,
    /// `1`: id, `2`: secret hash, `3`: now, `4`: expires at.
    pub record_activity: &'static str,
    /// `1`: id, `2`: secret hash, `3`: expires at.
    pub set_expiry: &'static str,
    /// `1`: id, `2`: old hash, `3`: new hash, `4`: now, `5`: expires at, `6`: client address,
    /// `7`: user agent, `8`: the retired secrets (column `previous_secret_hash`, which holds
    /// the whole chain since schema 2's single hash is a chain of one).
    pub replace_secret: &'static str,
    /// `1`: id.
    pub delete: &'static str,
    /// `1`: id, `2`: the retired secrets as read; deletes only while they still are.
    pub delete_reused: &'static str,
    /// `1`: user id, `2`: the id to keep, or null.
    pub delete_user: &'static str,
    pub delete_all: &'static str,
    /// `1`: user id, `2`: now.
    pub list_user: &'static str,
    /// `1`: user id, `2`: now; one column, the id.
    pub user_ids_by_age: &'static str,
    /// `1`: now, `2`: most rows to delete.
    pub delete_expired: &'static str,
    /// `1`: now; one row: active sessions, active users, expired rows, last cleanup (or null).
    pub stats: &'static str,
    /// Users with unexpired sessions whose id lies in `[1, 2)` in byte order and is not `3`,
    /// `4`: now, `5`: most rows. One row per user: user id, active sessions, latest
    /// activity; in byte order of the id. A range, not `LIKE`, so it is a scan of the user
    /// index from `1`, as long as a page and no longer.
    pub users_in_range: &'static str,
    /// `1`: now, `2`: now minus the cleanup interval.
    pub claim_cleanup: &'static str,
    /// `1`: now.
    pub mark_cleanup: &'static str,
}

/// The columns of a session row, in the order every dialect reads and writes them.
pub const SESSION_COLUMNS: &str = "id, secret_hash, user_id, created_at, last_activity, \
                                   expires_at, absolute_expires_at, idle_timeout, metadata";

impl Dialect {
    /// The schema version this build writes.
    pub fn current_version(&self) -> i64 {
        i64::try_from(self.migrations.len()).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statements(d: &Dialect) -> Vec<&'static str> {
        vec![
            d.find,
            d.insert_within_limit,
            d.record_activity,
            d.set_expiry,
            d.replace_secret,
            d.delete,
            d.delete_reused,
            d.delete_user,
            d.list_user,
            d.user_ids_by_age,
            d.delete_expired,
            d.stats,
            d.users_in_range,
            d.claim_cleanup,
            d.mark_cleanup,
        ]
    }

    /// The placeholders a statement uses, in order of first use.
    fn placeholders(sql: &str, sigil: char) -> Vec<u32> {
        let mut found = Vec::new();
        let mut chars = sql.char_indices().peekable();
        while let Some((_, c)) = chars.next() {
            if c == sigil {
                let mut n = String::new();
                while let Some((_, d)) = chars.peek().filter(|(_, d)| d.is_ascii_digit()) {
                    n.push(*d);
                    chars.next();
                }
                if let Ok(n) = n.parse()
                    && !found.contains(&n)
                {
                    found.push(n);
                }
            }
        }
        found.sort_unstable();
        found
    }

    #[test]
    fn both_dialects_bind_the_same_parameters_in_every_statement() {
        for (lite, pg) in statements(&SQLITE).into_iter().zip(statements(&POSTGRES)) {
            assert_eq!(
                placeholders(lite, '?'),
                placeholders(pg, '$'),
                "{lite}\n{pg}"
            );
            assert!(placeholders(lite, '$').is_empty(), "{lite}");
            assert!(placeholders(pg, '?').is_empty(), "{pg}");
        }
        // The check sees placeholders where there are some.
        assert_eq!(
            placeholders(SQLITE.replace_secret, '?'),
            [1, 2, 3, 4, 5, 6, 7, 8]
        );
    }

    #[test]
    fn both_dialects_have_the_same_number_of_migrations() {
        assert_eq!(SQLITE.current_version(), POSTGRES.current_version());
        assert!(SQLITE.current_version() >= 1);
    }
}
