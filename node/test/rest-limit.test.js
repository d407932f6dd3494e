// The per-user limit under concurrent creates over HTTP.

import assert from "node:assert/strict";
import { test } from "node:test";
import { admin, call, startServer } from "./helpers.js";

async function createMany(server, user, count) {
  return Promise.all(
    Array.from({ length: count }, () => call(server, "POST", "/sessions/create", { headers: admin, json: { user_id: user } })),
  );
}

test("under `reject`, 20 concurrent creates for one user leave exactly the limit of 3", async () => {
  const server = await startServer({ SESSION_MAX_PER_USER: "3", SESSION_LIMIT_POLICY: "reject" });
  try {
    const answers = await createMany(server, "eve", 20);
    const statuses = answers.map((a) => a.status);
    assert.equal(statuses.filter((s) => s === 200).length, 3, statuses.join(","));
    assert.equal(statuses.filter((s) => s === 409).length, 17, statuses.join(","));
    for (const a of answers.filter((a) => a.status === 409)) {
      assert.equal(a.body.error, "limit_reached");
    }
    const listed = await call(server, "GET", "/sessions/user/eve/sessions", { headers: admin });
    assert.equal(listed.body.count, 3);
    // Another user is not affected by eve's limit.
    const other = await call(server, "POST", "/sessions/create", { headers: admin, json: { user_id: "frank" } });
    assert.equal(other.status, 200, other.text);
  } finally {
    await server.stop();
  }
});

test("control: under `evict_oldest` all 20 succeed and the user still holds 3", async () => {
  const server = await startServer({ SESSION_MAX_PER_USER: "3", SESSION_LIMIT_POLICY: "evict_oldest" });
  try {
    const answers = await createMany(server, "eve", 20);
    assert.deepEqual([...new Set(answers.map((a) => a.status))], [200]);
    const listed = await call(server, "GET", "/sessions/user/eve/sessions", { headers: admin });
    assert.equal(listed.body.count, 3);
    const stats = await call(server, "GET", "/sessions/stats", { headers: admin });
    assert.equal(stats.body.active_sessions, 3);
  } finally {
    await server.stop();
  }
});
