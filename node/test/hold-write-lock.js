// A worker thread for host-imports.test.js: creates the file at `path` in SQLite's default
// rollback-journal mode, takes its write lock (BEGIN IMMEDIATE), tells the parent through
// `held` (1), and keeps the lock for `ms` milliseconds, then marks `held` 2 and lets it go: what a
// second process starting on the same new database at the same moment does. Like every
// connection of ours it waits up to 5 s for a lock: libsql's default is not to wait, and the
// COMMIT needs the file to itself, so a shared lock the parent's retries hold for an instant
// would fail it with SQLITE_BUSY (seen once in CI under load).

import Database from "libsql";
import { workerData } from "node:worker_threads";

const { path, held, ms } = workerData;
const db = new Database(path, { timeout: 5000 });
db.exec("CREATE TABLE IF NOT EXISTS t (x)");
db.exec("BEGIN IMMEDIATE");
const flag = new Int32Array(held);
Atomics.store(flag, 0, 1);
Atomics.notify(flag, 0);
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
Atomics.store(flag, 0, 2);
db.exec("COMMIT");
db.close();
