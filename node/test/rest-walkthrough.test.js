// The README's REST walkthrough, line by line, against the component served by Node.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { admin, call, startServer } from "./helpers.js";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

const SESSION_FIELDS = [
  "absolute_expires_at",
  "client_addr",
  "created_at",
  "expires_at",
  "id",
  "is_active",
  "last_activity",
  "metadata",
  "timeout",
  "user_agent",
  "user_id",
];

test("the README walkthrough runs with the same statuses and fields", async () => {
  const created = await call(server, "POST", "/sessions/create", {
    headers: admin,
    json: { user_id: "user123", timeout: 3600, metadata: { role: "developer", permissions: ["read", "write"] } },
  });
  assert.equal(created.status, 200, created.text);
  assert.deepEqual(Object.keys(created.body).sort(), [...SESSION_FIELDS, "session_id"].sort());
  assert.equal(created.body.user_id, "user123");
  assert.equal(created.body.timeout, 3600);
  // The device: the peer Node's server saw, as Spin's spin-client-addr.
  assert.match(created.body.client_addr, /^127\.0\.0\.1:\d+$/);
  assert.deepEqual(created.body.metadata, { role: "developer", permissions: ["read", "write"] });
  assert.equal(created.headers.get("cache-control"), "no-store");
  let token = created.body.session_id;
  const id = created.body.id;
  assert.match(token, /^[0-9a-f-]{36}\.[A-Za-z0-9_-]{43}$/);
  assert.ok(token.startsWith(`${id}.`));

  const valid = await call(server, "GET", "/sessions/validate", { headers: { "x-session-id": token } });
  assert.equal(valid.status, 200, valid.text);
  assert.equal(valid.body.valid, true);
  assert.equal(valid.body.id, id);
  assert.equal(valid.body.session_id, undefined, "validate never hands out the token");

  const forbidden = await call(server, "GET", "/sessions/validate?role=admin", { headers: { "x-session-id": token } });
  assert.equal(forbidden.status, 403);
  assert.deepEqual(forbidden.body, { detail: "role `admin` required", error: "forbidden" });
  const role = await call(server, "GET", "/sessions/validate?role=developer", { headers: { "x-session-id": token } });
  assert.equal(role.status, 200, role.text);
  const permission = await call(server, "GET", "/sessions/validate?permission=write", { headers: { "x-session-id": token } });
  assert.equal(permission.status, 200, permission.text);
  const noPermission = await call(server, "GET", "/sessions/validate?permission=delete", { headers: { "x-session-id": token } });
  assert.equal(noPermission.status, 403);
  assert.equal(noPermission.body.error, "forbidden");

  const before = Date.parse(valid.body.expires_at);
  const extended = await call(server, "POST", `/sessions/${token}/extend`, { json: { additional_seconds: 1800 } });
  assert.equal(extended.status, 200, extended.text);
  const moved = Date.parse(extended.body.expires_at) - before;
  assert.ok(moved >= 1799_000 && moved <= 1801_000, `expiry moved by ${moved} ms`);

  const listed = await call(server, "GET", "/sessions/user/user123/sessions", { headers: { "x-session-id": token } });
  assert.equal(listed.status, 200, listed.text);
  assert.equal(listed.body.user_id, "user123");
  assert.equal(listed.body.count, 1);
  assert.equal(listed.body.sessions[0].id, id);
  assert.ok(!listed.text.includes(token.split(".")[1]), "a listing never contains a token");

  const rotated = await call(server, "POST", `/sessions/${token}/rotate`);
  assert.equal(rotated.status, 200, rotated.text);
  assert.equal(rotated.body.id, id);
  assert.notEqual(rotated.body.session_id, token);
  const old = await call(server, "GET", "/sessions/validate", { headers: { "x-session-id": token } });
  assert.equal(old.status, 401);
  assert.deepEqual(old.body, {
    detail: "the session token is not valid (malformed, tampered or rotated)",
    error: "invalid_token",
  });
  token = rotated.body.session_id;

  const stats = await call(server, "GET", "/sessions/stats", { headers: admin });
  assert.equal(stats.status, 200, stats.text);
  assert.equal(stats.body.active_sessions, 1);
  assert.equal(stats.body.active_users, 1);
  assert.equal(stats.body.expired_awaiting_cleanup, 0);
  assert.ok("last_cleanup_at" in stats.body);
  const noKey = await call(server, "GET", "/sessions/stats");
  assert.equal(noKey.status, 401);
  assert.equal(noKey.body.error, "unauthorized");

  const deleted = await call(server, "DELETE", `/sessions/${token}`);
  assert.equal(deleted.status, 200, deleted.text);
  assert.deepEqual(deleted.body, { id, invalidated: true });
  const gone = await call(server, "GET", "/sessions/validate", { headers: { "x-session-id": token } });
  assert.equal(gone.status, 401);
  assert.deepEqual(gone.body, {
    detail: "the session does not exist (it was invalidated or has expired)",
    error: "invalid_session",
  });
});

test("health, cookies, user listing, cleanup and mass logout answer as documented", async () => {
  const health = await call(server, "GET", "/health");
  assert.equal(health.status, 200);
  assert.equal(health.body.status, "ok");

  const withCookie = await call(server, "POST", "/sessions/create?set_cookie=true", { headers: admin, json: { user_id: "alice" } });
  assert.equal(withCookie.status, 200, withCookie.text);
  const cookie = withCookie.headers.get("set-cookie");
  assert.ok(cookie?.startsWith(`zoe_session=${withCookie.body.session_id};`), cookie);
  assert.match(cookie, /HttpOnly/);
  const byCookie = await call(server, "GET", "/sessions/validate", { headers: { cookie: `zoe_session=${withCookie.body.session_id}` } });
  assert.equal(byCookie.status, 200, byCookie.text);

  await call(server, "POST", "/sessions/create", { headers: admin, json: { user_id: "albert" } });
  const users = await call(server, "GET", "/sessions/users?prefix=al", { headers: admin });
  assert.equal(users.status, 200, users.text);
  assert.deepEqual(users.body.users.map((u) => u.user_id), ["albert", "alice"]);

  const cleanup = await call(server, "POST", "/sessions/cleanup", { headers: admin, json: { max_rows: 10 } });
  assert.equal(cleanup.status, 200, cleanup.text);
  assert.equal(cleanup.body.deleted, 0);

  const refused = await call(server, "DELETE", "/sessions", { headers: admin });
  assert.equal(refused.status, 422, refused.text);
  const all = await call(server, "DELETE", "/sessions?all=true", { headers: admin });
  assert.equal(all.status, 200, all.text);
  assert.equal(all.body.invalidated, 2);
  const after = await call(server, "GET", "/sessions/stats", { headers: admin });
  assert.equal(after.body.active_sessions, 0);
});
