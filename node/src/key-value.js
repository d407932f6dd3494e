// `fermyon:spin/key-value@2.0.0` for the component, on libsql, as the native host provides it
// (host/src/key_value/) and as `spin up` does without a runtime config:
//
// - only the store labelled `default` exists; any other label is `no-such-store`;
// - `default` is Spin's own format, rows of `spin_key_value (store, key, value)` in
//   `sqlite_key_value.db` beside SESSION_DB_PATH (created private, WAL, 5 s busy timeout, as
//   the sessions database is), or in the process's one `:memory:` database;
// - every failure is the WIT `other` error with SQLite's message, thrown as an Error whose
//   `payload` jco lowers; the component answers it with 503, as for Redis being down.
//
// Redis, which Spin and the native host map a store onto by runtime config, has no synchronous
// Node client, so it is not offered here (as PostgreSQL is not: src/postgres.js).

import { dirname, join } from "node:path";
import { databasePath } from "./config.js";
import { connect } from "./sqlite.js";

/** The file of the `default` store, beside the sessions database (Spin's own file name). */
export const KEY_VALUE_FILE = "sqlite_key_value.db";

/** The error jco turns into the WIT `error` variant (its `payload`). */
export class KeyValueError extends Error {
  constructor(payload) {
    super(payload.val === undefined ? payload.tag : `${payload.tag}: ${payload.val}`);
    this.payload = payload;
  }
}

const other = (err) => new KeyValueError({ tag: "other", val: String(err?.message ?? err) });

/** Where the `default` store lives for the current SESSION_DB_PATH. */
export function storePath() {
  const db = databasePath();
  return db === ":memory:" ? ":memory:" : join(dirname(db), KEY_VALUE_FILE);
}

const SCHEMA = `CREATE TABLE IF NOT EXISTS spin_key_value (
  store TEXT NOT NULL,
  key   TEXT NOT NULL,
  value BLOB NOT NULL,
  PRIMARY KEY (store, key)
)`;

/** Proves to the constructor that `open` called it. */
const OPENING = Symbol("opening");

const dispose = Symbol.dispose ?? Symbol.for("dispose");

/** The guest's `store` resource. */
export class Store {
  #db;
  #shared;
  #label;
  #statements = new Map();
  #closed = false;

  constructor(token, opened, label) {
    if (token !== OPENING) {
      throw other("a store is made by Store.open");
    }
    this.#db = opened.db;
    this.#shared = opened.shared;
    this.#label = label;
  }

  /** `open: static func(label: string) -> result<store, error>` */
  static open(label) {
    if (label !== "default") {
      throw new KeyValueError({ tag: "no-such-store" });
    }
    let opened;
    try {
      opened = connect(storePath());
      opened.db.exec(SCHEMA);
    } catch (err) {
      throw other(err);
    }
    return new Store(OPENING, opened, label);
  }

  #run(sql, use) {
    if (this.#closed) {
      throw other("the store is closed");
    }
    try {
      let stmt = this.#statements.get(sql);
      if (!stmt) {
        stmt = this.#db.prepare(sql);
        this.#statements.set(sql, stmt);
      }
      return use(stmt);
    } catch (err) {
      throw other(err);
    }
  }

  /** `get: func(key: string) -> result<option<list<u8>>, error>` */
  get(key) {
    const row = this.#run("SELECT value FROM spin_key_value WHERE store = ? AND key = ?", (s) =>
      s.get(this.#label, key),
    );
    if (row === undefined) {
      return undefined;
    }
    const value = row.value;
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }

  /** `set: func(key: string, value: list<u8>) -> result<_, error>` */
  set(key, value) {
    const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    this.#run(
      `INSERT INTO spin_key_value (store, key, value) VALUES (?, ?, ?)
       ON CONFLICT (store, key) DO UPDATE SET value = excluded.value`,
      (s) => s.run(this.#label, key, bytes),
    );
  }

  /** `delete: func(key: string) -> result<_, error>` */
  delete(key) {
    this.#run("DELETE FROM spin_key_value WHERE store = ? AND key = ?", (s) => s.run(this.#label, key));
  }

  /** `exists: func(key: string) -> result<bool, error>` */
  exists(key) {
    return (
      this.#run("SELECT 1 AS one FROM spin_key_value WHERE store = ? AND key = ?", (s) =>
        s.get(this.#label, key),
      ) !== undefined
    );
  }

  /** `get-keys: func() -> result<list<string>, error>` */
  getKeys() {
    return this.#run("SELECT key FROM spin_key_value WHERE store = ?", (s) => s.all(this.#label)).map(
      (row) => row.key,
    );
  }

  [dispose]() {
    if (this.#closed) {
      return;
    }
    this.#closed = true;
    this.#statements.clear();
    if (!this.#shared) {
      this.#db.close();
    }
  }
}
