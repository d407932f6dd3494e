// The in-process API, `import { sessions } from "zoe-session"`: every function of
// `zoe:session/sessions`, with its error cases. Settings are read once per process, so this
// file sets them before the first import.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { join } from "node:path";
import { tempDir } from "./helpers.js";

const temp = tempDir();
for (const key of Object.keys(process.env).filter((k) => k.startsWith("SESSION_"))) {
  delete process.env[key];
}
Object.assign(process.env, {
  SESSION_DB_PATH: join(temp.dir, "sessions.db"),
  SESSION_MAX_PER_USER: "2",
  SESSION_LIMIT_POLICY: "reject",
  SESSION_MIN_TIMEOUT: "1",
  SESSION_MAX_TIMEOUT: "7200",
  SESSION_LOG_LEVEL: "ERROR",
});

/** @type {typeof import("zoe-session").sessions} */
let sessions;
before(async () => {
  ({ sessions } = await import("zoe-session"));
});
after(() => temp.cleanup());

/** The WIT error a call threw (jco's ComponentError carries it as `payload`). */
function failure(fn) {
  try {
    fn();
  } catch (err) {
    assert.ok(err.payload, `not a component error: ${err}`);
    return err.payload;
  }
  assert.fail("the call succeeded");
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

describe("sessions, in process", () => {
  test("create issues a token and a session; bad input and the limit are errors", () => {
    const issued = sessions.create("u-create", { timeoutSeconds: 600, metadata: '{"role":"developer"}' });
    assert.match(issued.token, /^[0-9a-f-]{36}\.[A-Za-z0-9_-]{43}$/);
    const s = issued.session;
    assert.equal(s.userId, "u-create");
    assert.equal(s.idleTimeout, 600);
    assert.equal(typeof s.createdAt, "bigint");
    assert.equal(s.expiresAt - s.createdAt, 600_000n);
    assert.equal(s.metadata, '{"role":"developer"}');
    assert.equal(s.isActive, true);
    const defaults = sessions.create("u-create", {});
    assert.equal(defaults.session.idleTimeout, 3600);
    assert.equal(defaults.session.metadata, "{}");
    assert.deepEqual(failure(() => sessions.create("u-create", {})), { tag: "limit-reached" });
    const tooLong = failure(() => sessions.create("u-other", { timeoutSeconds: 7201 }));
    assert.equal(tooLong.tag, "invalid-input");
    assert.match(tooLong.val, /timeout/);
    assert.equal(failure(() => sessions.create("u-other", { metadata: "[1]" })).tag, "invalid-input");
    assert.equal(failure(() => sessions.create("u-other", { metadata: "{" })).tag, "invalid-input");
    assert.equal(failure(() => sessions.create("", {})).tag, "invalid-input");
  });

  test("validate returns the session; tampered, unknown and expired tokens are errors", async () => {
    const { token, session } = sessions.create("u-validate", { timeoutSeconds: 1 });
    assert.equal(sessions.validate(token).id, session.id);
    assert.deepEqual(failure(() => sessions.validate(`${token}x`)), { tag: "invalid-token" });
    assert.deepEqual(failure(() => sessions.validate("not a token")), { tag: "invalid-token" });
    const unknown = `00000000-0000-4000-8000-000000000000.${token.split(".")[1]}`;
    assert.deepEqual(failure(() => sessions.validate(unknown)), { tag: "not-found" });
    await sleep(1300);
    assert.deepEqual(failure(() => sessions.validate(token)), { tag: "expired" });
  });

  test("authorize checks roles and permissions; admin satisfies both", () => {
    const dev = sessions.create("u-auth", { metadata: '{"role":"developer","permissions":["read"]}' }).token;
    const boss = sessions.create("u-auth", { metadata: '{"role":"admin"}' }).token;
    assert.equal(sessions.authorize(dev, { tag: "role", val: "developer" }).userId, "u-auth");
    assert.equal(sessions.authorize(dev, { tag: "permission", val: "read" }).userId, "u-auth");
    const role = failure(() => sessions.authorize(dev, { tag: "role", val: "admin" }));
    assert.deepEqual(role, { tag: "forbidden", val: "role `admin` required" });
    assert.equal(failure(() => sessions.authorize(dev, { tag: "permission", val: "write" })).tag, "forbidden");
    assert.ok(sessions.authorize(boss, { tag: "role", val: "developer" }));
    assert.ok(sessions.authorize(boss, { tag: "permission", val: "write" }));
    assert.deepEqual(failure(() => sessions.authorize(`${dev}x`, { tag: "role", val: "developer" })), { tag: "invalid-token" });
  });

  test("get finds a session by id or token; a wrong secret or unknown id is an error", () => {
    const { token, session } = sessions.create("u-get", {});
    assert.equal(sessions.get(session.id).id, session.id);
    assert.equal(sessions.get(token).id, session.id);
    const wrong = `${session.id}.${"A".repeat(43)}`;
    assert.deepEqual(failure(() => sessions.get(wrong)), { tag: "invalid-token" });
    assert.deepEqual(failure(() => sessions.get("00000000-0000-4000-8000-000000000000")), { tag: "not-found" });
  });

  test("touch records activity now; extend pushes expiry within max_timeout", async () => {
    const { token, session } = sessions.create("u-touch", { timeoutSeconds: 600 });
    await sleep(20);
    const touched = sessions.touch(token);
    assert.ok(touched.lastActivity > session.lastActivity);
    assert.ok(touched.expiresAt > session.expiresAt);
    const extended = sessions.extend(token, 1800);
    assert.ok(extended.expiresAt >= touched.expiresAt + 1_799_000n, `${extended.expiresAt - touched.expiresAt}`);
    // Capped at now + max_timeout (7200 s); more than max_timeout at once is refused.
    const capped = sessions.extend(token, 7200);
    assert.ok(capped.expiresAt - capped.lastActivity <= 7_200_000n + 1000n, `${capped.expiresAt - capped.lastActivity}`);
    assert.equal(failure(() => sessions.extend(token, 100_000)).tag, "invalid-input");
    assert.equal(failure(() => sessions.extend(token, 0)).tag, "invalid-input");
    assert.deepEqual(failure(() => sessions.touch(`${token}x`)), { tag: "invalid-token" });
    assert.equal(failure(() => sessions.extend(`${token}x`, 10)).tag, "invalid-token");
  });

  test("rotate issues a new token and the old one stops working", () => {
    const { token, session } = sessions.create("u-rotate", {});
    const rotated = sessions.rotate(token);
    assert.equal(rotated.session.id, session.id);
    assert.notEqual(rotated.token, token);
    assert.deepEqual(failure(() => sessions.validate(token)), { tag: "invalid-token" });
    assert.equal(sessions.validate(rotated.token).id, session.id);
    assert.deepEqual(failure(() => sessions.rotate(token)), { tag: "invalid-token" });
  });

  test("invalidate deletes one session by id or token; a second time is not-found", () => {
    const a = sessions.create("u-inv", {});
    const b = sessions.create("u-inv", {});
    sessions.invalidate(a.session.id);
    sessions.invalidate(b.token);
    assert.deepEqual(failure(() => sessions.validate(a.token)), { tag: "not-found" });
    assert.deepEqual(failure(() => sessions.validate(b.token)), { tag: "not-found" });
    assert.deepEqual(failure(() => sessions.invalidate(a.session.id)), { tag: "not-found" });
  });

  test("invalidateUser deletes a user's sessions, optionally but one; listUser lists the active ones", async () => {
    const first = sessions.create("u-list", {});
    await sleep(5);
    const second = sessions.create("u-list", {});
    await sleep(5);
    sessions.touch(first.token);
    const listed = sessions.listUser("u-list");
    assert.deepEqual(
      listed.map((s) => s.id),
      [first.session.id, second.session.id],
      "most recently active first",
    );
    assert.deepEqual(sessions.listUser("nobody"), []);
    assert.equal(sessions.invalidateUser("u-list", first.session.id), 1);
    assert.deepEqual(sessions.listUser("u-list").map((s) => s.id), [first.session.id]);
    assert.equal(sessions.invalidateUser("u-list", undefined), 1);
    assert.equal(sessions.invalidateUser("u-list", undefined), 0);
    assert.equal(failure(() => sessions.listUser("")).tag, "invalid-input");
  });

  test("stats counts, cleanup deletes expired rows, invalidateAll deletes everything", async () => {
    sessions.invalidateAll();
    sessions.create("u-stats", {});
    sessions.create("u-stats", {});
    const short = sessions.create("u-stats2", { timeoutSeconds: 1 });
    let stats = sessions.stats();
    assert.equal(stats.activeSessions, 3n);
    assert.equal(stats.activeUsers, 2n);
    await sleep(1300);
    stats = sessions.stats();
    assert.equal(stats.activeSessions, 2n);
    assert.equal(stats.expiredAwaitingCleanup, 1n);
    assert.equal(sessions.cleanup(100), 1);
    assert.equal(sessions.cleanup(100), 0);
    assert.deepEqual(failure(() => sessions.validate(short.token)), { tag: "not-found" });
    stats = sessions.stats();
    assert.equal(stats.expiredAwaitingCleanup, 0n);
    assert.ok(stats.lastCleanupAt > 0n);
    assert.equal(sessions.invalidateAll(), 2);
    assert.equal(sessions.stats().activeSessions, 0n);
    assert.equal(sessions.invalidateAll(), 0);
  });
});
