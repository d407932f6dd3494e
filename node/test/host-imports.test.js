// The imports this package gives the component, tested directly: spin:sqlite on libsql,
// Spin variables from SESSION_*, the PostgreSQL refusal, the key-value store, and (through the
// component, in a child process) what a PostgreSQL URL and a key-value store do under Node.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { REQUEST_SETTINGS, VARIABLE_TO_ENV } from "../src/config.js";
import { Connection as Postgres, POSTGRES_UNAVAILABLE } from "../src/postgres.js";
import { KEY_VALUE_FILE, Store } from "../src/key-value.js";
import { BUSY_TIMEOUT_MS, Connection } from "../src/sqlite.js";
import { lookup } from "../src/variables.js";
import { tempDir } from "./helpers.js";

const dispose = Symbol.dispose ?? Symbol.for("dispose");

function thrown(fn) {
  try {
    fn();
  } catch (err) {
    assert.ok(err.payload, `no payload on ${err}`);
    return err.payload;
  }
  assert.fail("no error");
}

const int = (n) => ({ tag: "integer", val: BigInt(n) });
const count = (conn, table = "t") => conn.execute(`SELECT count(*) FROM ${table}`, []).rows[0].values[0].val;

describe("spin:sqlite on libsql", () => {
  let temp;
  let savedPath;
  beforeEach(() => {
    temp = tempDir();
    savedPath = process.env.SESSION_DB_PATH;
    process.env.SESSION_DB_PATH = join(temp.dir, "nested", "db.sqlite");
  });
  afterEach(() => {
    if (savedPath === undefined) {
      delete process.env.SESSION_DB_PATH;
    } else {
      process.env.SESSION_DB_PATH = savedPath;
    }
    temp.cleanup();
  });

  test("only `default` opens; others are access-denied, as in the native host", () => {
    assert.deepEqual(thrown(() => Connection.open("other")), { tag: "access-denied" });
    assert.deepEqual(thrown(() => Connection.open("")), { tag: "access-denied" });
    const conn = Connection.open("default");
    assert.ok(conn instanceof Connection);
    conn[dispose]();
  });

  test("the file is created private, in WAL mode, synchronous NORMAL, with a 5 s busy timeout", () => {
    const conn = Connection.open("default");
    const pragma = (name) => conn.execute(`PRAGMA ${name}`, []).rows[0].values[0].val;
    assert.equal(pragma("journal_mode"), "wal");
    assert.equal(pragma("synchronous"), 1n);
    assert.equal(pragma("busy_timeout"), BigInt(BUSY_TIMEOUT_MS));
    assert.equal(BUSY_TIMEOUT_MS, 5000);
    assert.equal(statSync(process.env.SESSION_DB_PATH).mode & 0o777, 0o600);
    assert.equal(statSync(join(temp.dir, "nested")).mode & 0o777, 0o700);
    conn[dispose]();
  });

  test("a new file another process holds write-locked is turned to WAL once the lock goes", async () => {
    // SQLite refuses the switch to WAL at once, without waiting for the busy timeout, while
    // another connection holds the write lock of a file still in rollback-journal mode.
    // Positive control, by hand: without the retry in `enterWal` this failed with
    // "database is locked" after 0 ms.
    mkdirSync(join(temp.dir, "nested"), { recursive: true });
    const held = new Int32Array(new SharedArrayBuffer(4));
    const holder = new Worker(new URL("./hold-write-lock.js", import.meta.url), {
      workerData: { path: process.env.SESSION_DB_PATH, held: held.buffer, ms: 300 },
    });
    const exited = new Promise((resolve, reject) => {
      holder.on("exit", resolve);
      holder.on("error", reject);
    });
    Atomics.wait(held, 0, 0, 10_000);
    assert.ok(held[0] >= 1, "the worker took the lock");
    const conn = Connection.open("default");
    // No timing is asserted: the worker marks the release, which the open waited for.
    assert.equal(Atomics.load(held, 0), 2, "opened only once the lock went");
    assert.equal(conn.execute("PRAGMA journal_mode", []).rows[0].values[0].val, "wal");
    conn[dispose]();
    await exited;
  });

  test("values cross as WIT variants, integers exact to 64 bits", () => {
    const conn = Connection.open("default");
    conn.execute("CREATE TABLE v (x)", []);
    const values = [
      int(9223372036854775807n),
      int(-9223372036854775808n),
      int(9007199254740993n),
      { tag: "real", val: 1 },
      { tag: "real", val: 2.5 },
      { tag: "text", val: "héllo" },
      { tag: "blob", val: new Uint8Array([0, 1, 255]) },
      { tag: "null" },
    ];
    for (const value of values) {
      conn.execute("INSERT INTO v VALUES (?)", [value]);
      assert.equal(conn.changes(), 1n);
    }
    const result = conn.execute("SELECT x, typeof(x) AS kind FROM v ORDER BY rowid", []);
    assert.deepEqual(result.columns, ["x", "kind"]);
    assert.deepEqual(
      result.rows.map((r) => r.values[0]),
      values,
    );
    assert.deepEqual(
      result.rows.map((r) => r.values[1].val),
      ["integer", "integer", "integer", "real", "real", "text", "blob", "null"],
    );
    assert.equal(conn.lastInsertRowid(), 8n);
    conn[dispose]();
  });

  test("changes counts the last write, also one with RETURNING", () => {
    const conn = Connection.open("default");
    conn.execute("CREATE TABLE t (x)", []);
    conn.execute("INSERT INTO t VALUES (1), (2), (3)", []);
    assert.equal(conn.changes(), 3n);
    const deleted = conn.execute("DELETE FROM t WHERE x >= ? RETURNING x", [int(2)]);
    assert.equal(deleted.rows.length, 2);
    assert.equal(conn.changes(), 2n);
    conn.execute("SELECT * FROM t", []);
    assert.equal(conn.changes(), 2n, "a read does not reset it");
    conn[dispose]();
  });

  test("a transaction runs on its handle's connection; a handle dropped inside one is rolled back", () => {
    const writer = Connection.open("default");
    const reader = Connection.open("default");
    writer.execute("CREATE TABLE t (x)", []);
    writer.execute("BEGIN IMMEDIATE", []);
    writer.execute("INSERT INTO t VALUES (1)", []);
    assert.equal(count(writer), 1n, "the writer sees its own row");
    assert.equal(count(reader), 0n, "another handle does not, yet");
    writer.execute("COMMIT", []);
    assert.equal(count(reader), 1n);
    writer.execute("BEGIN IMMEDIATE", []);
    writer.execute("INSERT INTO t VALUES (2)", []);
    writer[dispose]();
    assert.equal(count(reader), 1n, "rolled back");
    reader.execute("INSERT INTO t VALUES (3)", []);
    assert.equal(count(reader), 2n, "and the write lock is free again");
    assert.deepEqual(thrown(() => writer.execute("SELECT 1", [])), { tag: "invalid-connection" });
    reader[dispose]();
  });

  test("SQL errors are the io variant with SQLite's message", () => {
    const conn = Connection.open("default");
    const syntax = thrown(() => conn.execute("SELEC 1", []));
    assert.equal(syntax.tag, "io");
    assert.match(syntax.val, /syntax error/);
    conn.execute("CREATE TABLE u (x UNIQUE)", []);
    conn.execute("INSERT INTO u VALUES (1)", []);
    const unique = thrown(() => conn.execute("INSERT INTO u VALUES (1)", []));
    assert.equal(unique.tag, "io");
    assert.match(unique.val, /UNIQUE constraint failed/);
    conn[dispose]();
  });

  test(":memory: is one database shared by every handle", () => {
    process.env.SESSION_DB_PATH = ":memory:";
    const a = Connection.open("default");
    const b = Connection.open("default");
    a.execute("CREATE TABLE IF NOT EXISTS m (x)", []);
    a.execute("INSERT INTO m VALUES (1)", []);
    assert.ok(count(b, "m") >= 1n);
    a[dispose]();
    assert.ok(count(b, "m") >= 1n, "dropping one handle keeps the database");
    b[dispose]();
  });
});

describe("fermyon:spin/variables from SESSION_*", () => {
  test("every variable reads its environment variable", () => {
    assert.equal(Object.keys(VARIABLE_TO_ENV).length, 28);
    for (const [variable, env] of Object.entries(VARIABLE_TO_ENV)) {
      assert.equal(lookup(variable, { [env]: `value of ${env}` }), `value of ${env}`);
      assert.deepEqual(thrown(() => lookup(variable, {})).tag, "undefined");
    }
    assert.equal(VARIABLE_TO_ENV.database_url, "SESSION_DATABASE_URL");
    assert.equal(VARIABLE_TO_ENV.session_header, "SESSION_HEADER");
    assert.equal(lookup("max_per_user", { SESSION_MAX_PER_USER: "" }), "", "set but empty is a value");
  });

  test("the request settings come as one variable of setting=value lines, as spin.toml renders them", () => {
    const env = { SESSION_LOG_LEVEL: "DEBUG", SESSION_HEADER: "X-Token", SESSION_MAX_PER_USER: "3" };
    assert.equal(
      lookup(REQUEST_SETTINGS.variable, env),
      "log_requests=\nlog_level=DEBUG\nrequire_https=\nsession_header=X-Token\nkey_value_store=",
    );
    // Every setting its line, even with nothing set (then every one takes its default).
    assert.equal(lookup(REQUEST_SETTINGS.variable, {}).split("\n").length, 5);
  });

  test("a well-formed name outside the table is undefined; a malformed one is invalid-name", () => {
    const env = { SESSION_SETTINGS: "x", settings: "x", PATH: "/bin" };
    assert.equal(thrown(() => lookup("settings", env)).tag, "undefined");
    assert.equal(thrown(() => lookup("path", env)).tag, "undefined");
    for (const name of ["", "Max", "9lives", "a-b", "a b", "MAX_PER_USER", "_x"]) {
      assert.equal(thrown(() => lookup(name, env)).tag, "invalid-name", JSON.stringify(name));
    }
  });
});

describe("spin:postgres under Node", () => {
  test("open is refused with connection-failed and a text that says what to do", () => {
    const payload = thrown(() => Postgres.open("postgres://u@127.0.0.1/db"));
    assert.deepEqual(payload, { tag: "connection-failed", val: POSTGRES_UNAVAILABLE });
    assert.match(POSTGRES_UNAVAILABLE, /SESSION_DATABASE_URL empty/);
  });

  test("through the component, a postgres:// database_url is a storage error naming the reason", () => {
    const temp = tempDir();
    try {
      const script = `
        import { sessions } from "zoe-session";
        try { sessions.stats(); console.log(JSON.stringify({ ok: true })); }
        catch (err) { console.log(JSON.stringify(err.payload)); }`;
      const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
        cwd: fileURLToPath(new URL("..", import.meta.url)),
        env: {
          PATH: process.env.PATH,
          SESSION_DB_PATH: join(temp.dir, "db.sqlite"),
          SESSION_DATABASE_URL: "postgres://zoe@127.0.0.1:5432/sessions",
          SESSION_LOG_LEVEL: "ERROR",
        },
        encoding: "utf8",
      });
      const payload = JSON.parse(out.trim().split("\n").at(-1));
      assert.equal(payload.tag, "storage", out);
      assert.ok(payload.val.includes("PostgreSQL is not available in the Node host"), payload.val);
    } finally {
      temp.cleanup();
    }
  });
});

describe("fermyon:spin/key-value on libsql", () => {
  let temp;
  let savedPath;
  beforeEach(() => {
    temp = tempDir();
    savedPath = process.env.SESSION_DB_PATH;
    process.env.SESSION_DB_PATH = join(temp.dir, "nested", "db.sqlite");
  });
  afterEach(() => {
    if (savedPath === undefined) {
      delete process.env.SESSION_DB_PATH;
    } else {
      process.env.SESSION_DB_PATH = savedPath;
    }
    temp.cleanup();
  });

  test("only `default` opens; another label is no-such-store", () => {
    assert.deepEqual(thrown(() => Store.open("sessions")), { tag: "no-such-store" });
    const store = Store.open("default");
    assert.ok(store instanceof Store);
    store[dispose]();
  });

  test("values round-trip byte for byte in Spin's file beside the database", () => {
    const store = Store.open("default");
    const bytes = new Uint8Array([0, 255, 1, 128]);
    assert.equal(store.get("k"), undefined);
    assert.equal(store.exists("k"), false);
    store.set("k", bytes);
    store.set("other", new Uint8Array([7]));
    assert.deepEqual([...store.get("k")], [...bytes]);
    assert.equal(store.exists("k"), true);
    assert.deepEqual(store.getKeys().sort(), ["k", "other"]);
    store.set("k", new Uint8Array([9]));
    assert.deepEqual([...store.get("k")], [9]);
    store.delete("k");
    store.delete("k");
    assert.equal(store.get("k"), undefined);
    assert.deepEqual(store.getKeys(), ["other"]);
    store[dispose]();
    // Spin's own schema, in Spin's own file name, where the next open finds it.
    assert.ok(statSync(join(temp.dir, "nested", KEY_VALUE_FILE)).isFile());
    const again = Store.open("default");
    assert.deepEqual([...again.get("other")], [7]);
    again[dispose]();
  });

  test("through the component, key_value_store=default keeps sessions in the store", () => {
    const script = `
      import { sessions } from "zoe-session";
      const issued = sessions.create("alice", {});
      const session = sessions.validate(issued.token);
      console.log(JSON.stringify({ user: session.userId }));`;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
      cwd: fileURLToPath(new URL("..", import.meta.url)),
      env: {
        PATH: process.env.PATH,
        SESSION_DB_PATH: join(temp.dir, "db.sqlite"),
        SESSION_KEY_VALUE_STORE: "default",
        SESSION_LOG_LEVEL: "ERROR",
      },
      encoding: "utf8",
    });
    assert.deepEqual(JSON.parse(out.trim().split("\n").at(-1)), { user: "alice" });
    // The session is in the key-value file, not in the SQL database.
    process.env.SESSION_DB_PATH = join(temp.dir, "db.sqlite");
    const store = Store.open("default");
    assert.ok(store.getKeys().length > 0, "the store holds the session");
    store[dispose]();
  });
});
