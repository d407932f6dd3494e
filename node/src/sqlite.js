// `spin:sqlite/sqlite@3.0.0` for the component, on libsql (better-sqlite3's synchronous API,
// with its SQLite binary shipped inside an npm package), following the native host
// (host/src/sqlite.rs):
//
// - only the database labelled `default` exists; any other label is refused with
//   `access-denied`, as the native host and Spin answer for a database the component was not
//   granted;
// - `default` is the file SESSION_DB_PATH names (default data/sessions.db, parent directories
//   created private, the file mode 0600), or `:memory:`;
// - a file database is in WAL mode with synchronous=NORMAL; every connection has a 5000 ms busy
//   timeout;
// - each guest `open` gets a connection of its own (as Spin gives it), so a transaction the
//   guest opens (`BEGIN IMMEDIATE … COMMIT`) runs entirely on that connection; a handle dropped
//   mid-transaction is rolled back before its connection closes. `:memory:` is one database
//   shared by every handle of this process (a second connection would see an empty database);
// - values cross as the WIT `value` variant with integers as BigInt, exact to 64 bits both
//   ways; errors are the WIT `error` variant (`database-full` for SQLITE_FULL, else `io` with
//   SQLite's message), thrown as an Error whose `payload` jco lowers.
//
// jco calls these imports synchronously on the calling thread, which libsql's synchronous API
// fits: a statement waiting for SQLite's write lock blocks Node's thread for at most the busy
// timeout.

import Database from "libsql";
import { closeSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import { databasePath } from "./config.js";

/** How long a statement waits for SQLite's write lock. */
export const BUSY_TIMEOUT_MS = 5000;

/** Prepared statements kept per connection; the component uses a small fixed set. */
const STATEMENT_CACHE = 64;

/** The error jco turns into the WIT `error` variant (its `payload`). */
export class SqliteError extends Error {
  constructor(payload) {
    super(payload.val === undefined ? payload.tag : `${payload.tag}: ${payload.val}`);
    this.payload = payload;
  }
}

function io(message) {
  return new SqliteError({ tag: "io", val: String(message) });
}

function fromLibsql(err) {
  if (err?.code === "SQLITE_FULL") {
    return new SqliteError({ tag: "database-full" });
  }
  return io(err?.message ?? err);
}

/** The one `:memory:` database of this process, shared by every handle. */
let memory = null;

/** Opens a connection to `location` with the settings every connection has. */
export function connect(location = databasePath()) {
  if (location === ":memory:") {
    if (!memory) {
      memory = new Database(":memory:");
      memory.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    }
    return { db: memory, shared: true };
  }
  const dir = dirname(location);
  if (dir && dir !== ".") {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }
  // Create the file private before SQLite does (SQLite would use the umask).
  closeSync(openSync(location, "a", 0o600));
  const db = new Database(location);
  db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
  const mode = enterWal(db);
  if (String(mode).toLowerCase() !== "wal") {
    db.close();
    throw new Error(`cannot put ${location} in WAL mode (journal_mode is ${mode})`);
  }
  db.exec("PRAGMA synchronous = NORMAL");
  return { db, shared: false };
}

/** Parks this thread for `ms` milliseconds (connect is synchronous, as jco calls it). */
const pause = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * Turns the file to WAL, waiting up to the busy timeout for other connections: SQLite answers
 * SQLITE_BUSY at once, without the busy handler, while another connection holds a write lock
 * on a file still in rollback-journal mode (two processes starting together on a new
 * database), so this retries as the native host does (`set_journal_mode` in host/src/sqlite.rs).
 * Returns the journal mode SQLite reports.
 */
function enterWal(db) {
  const deadline = Date.now() + BUSY_TIMEOUT_MS;
  for (;;) {
    try {
      return db.prepare("PRAGMA journal_mode = WAL").raw(true).all()[0][0];
    } catch (err) {
      if (err?.code !== "SQLITE_BUSY" || Date.now() >= deadline) {
        throw err;
      }
      pause(2);
    }
  }
}

function toSql(value) {
  switch (value.tag) {
    case "integer":
      return BigInt(value.val);
    case "real":
      return value.val;
    case "text":
      return value.val;
    case "blob":
      return Buffer.from(value.val.buffer, value.val.byteOffset, value.val.byteLength);
    case "null":
      return null;
    default:
      throw io(`unknown value ${value.tag}`);
  }
}

function fromSql(value) {
  if (value === null || value === undefined) {
    return { tag: "null" };
  }
  switch (typeof value) {
    case "bigint":
      return { tag: "integer", val: value };
    case "number":
      // Safe integers are on, so a number is always a REAL.
      return { tag: "real", val: value };
    case "string":
      return { tag: "text", val: value };
    default:
      if (value instanceof Uint8Array) {
        return { tag: "blob", val: new Uint8Array(value.buffer, value.byteOffset, value.byteLength) };
      }
      if (value instanceof ArrayBuffer) {
        return { tag: "blob", val: new Uint8Array(value) };
      }
      throw io(`unexpected column value of type ${typeof value}`);
  }
}

/** Proves to the constructor that `open` called it. */
const OPENING = Symbol("opening");

const dispose = Symbol.dispose ?? Symbol.for("dispose");

/** The guest's `connection` resource. */
export class Connection {
  #db;
  #shared;
  #statements = new Map();
  /** `changes` after the last statement, or null when it must be asked of SQLite. */
  #changes = 0n;
  #closed = false;

  constructor(token, opened) {
    if (token !== OPENING) {
      throw io("a connection is made by Connection.open");
    }
    this.#db = opened.db;
    this.#shared = opened.shared;
  }

  /** `open: static func(database: string) -> result<connection, error>` */
  static open(database) {
    if (database !== "default") {
      throw new SqliteError({ tag: "access-denied" });
    }
    let opened;
    try {
      opened = connect();
    } catch (err) {
      throw fromLibsql(err);
    }
    return new Connection(OPENING, opened);
  }

  #live() {
    if (this.#closed) {
      throw new SqliteError({ tag: "invalid-connection" });
    }
    return this.#db;
  }

  #prepare(statement) {
    let stmt = this.#statements.get(statement);
    if (stmt) {
      return stmt;
    }
    stmt = this.#live().prepare(statement);
    stmt.safeIntegers(true);
    const reader = stmt.reader;
    if (reader) {
      stmt.raw(true);
    }
    const entry = { stmt, reader, columns: reader ? stmt.columns().map((c) => c.name) : [] };
    if (this.#statements.size >= STATEMENT_CACHE) {
      this.#statements.delete(this.#statements.keys().next().value);
    }
    this.#statements.set(statement, entry);
    return entry;
  }

  /** `execute: func(statement: string, parameters: list<value>) -> result<query-result, error>` */
  execute(statement, parameters) {
    try {
      const entry = this.#prepare(statement);
      const params = parameters.map(toSql);
      if (entry.reader) {
        const rows = entry.stmt.all(params);
        this.#changes = null;
        return {
          columns: entry.columns,
          rows: rows.map((row) => ({ values: row.map(fromSql) })),
        };
      }
      const info = entry.stmt.run(params);
      this.#changes = BigInt(info.changes);
      return { columns: [], rows: [] };
    } catch (err) {
      if (err instanceof SqliteError) {
        throw err;
      }
      throw fromLibsql(err);
    }
  }

  #ask(sql) {
    const [[value]] = this.#live().prepare(sql).raw(true).safeIntegers(true).all();
    return BigInt(value);
  }

  /** `last-insert-rowid: func() -> s64`, exact (asked of SQLite as a 64-bit integer). */
  lastInsertRowid() {
    return this.#ask("SELECT last_insert_rowid()");
  }

  /** `changes: func() -> u64` */
  changes() {
    if (this.#changes === null) {
      this.#changes = this.#ask("SELECT changes()");
    }
    return this.#changes;
  }

  /** The guest dropped the handle: roll back an unfinished transaction and close. */
  [dispose]() {
    if (this.#closed) {
      return;
    }
    this.#closed = true;
    this.#statements.clear();
    const db = this.#db;
    try {
      if (db.inTransaction) {
        db.exec("ROLLBACK");
      }
    } catch {
      // Nothing to keep: the connection is closed next (or shared and reused).
    }
    if (!this.#shared) {
      db.close();
    }
  }
}
