//! The users-in-range scan (the admin console's prefix search) on PostgreSQL uses an index
//! under a linguistic database collation, not only under `C`.

use zoe_session::store::Db;
use zoe_session::store::native_postgres::NativePostgres;
use zoe_session::store::sql::POSTGRES;

#[test]
fn the_prefix_scan_uses_an_index_under_an_icu_collation() {
    let server = zoe_test_postgres::shared();
    let name = format!("icu_{}", std::process::id());
    server
        .psql(
            "postgres",
            &format!(
                "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' \
                 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
            ),
        )
        .expect("an ICU database (PostgreSQL 15 or later, built with ICU)");
    // The collation is linguistic: under C, 'B' sorts before 'a'.
    assert_eq!(server.psql(&name, "SELECT 'a' < 'B'").unwrap(), "t");
    // Opening the store creates the schema.
    let connection = NativePostgres::connect(&server.database_url(&name)).expect("connect");
    drop(Db::open(Box::new(connection)).expect("migrated"));
    server
        .psql(
            &name,
            "INSERT INTO sessions (id, secret_hash, user_id, created_at, last_activity, \
             expires_at, absolute_expires_at, idle_timeout, metadata) \
             SELECT 'id' || n, '\\x00', 'user' || n, 0, 0, 1000, 1000, 1, '{}' \
             FROM generate_series(1, 2000) AS n; ANALYZE sessions",
        )
        .unwrap();
    let scan = POSTGRES
        .users_in_range
        .replace("$1", "'user1'")
        .replace("$2", "'user2'")
        .replace("$3", "''")
        .replace("$4", "0")
        .replace("$5", "50");
    let plan = server
        .psql(&name, &format!("SET enable_seqscan = off; EXPLAIN {scan}"))
        .unwrap();
    assert!(
        plan.contains("sessions_by_user_bytes") && plan.contains("Index Cond"),
        "{plan}"
    );
}
