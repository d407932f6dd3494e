// Bad input over HTTP, and the request as Spin presents it: peers come from the socket, and
// a client's own `spin-*` headers are dropped.

import assert from "node:assert/strict";
import net from "node:net";
import { after, before, test } from "node:test";
import { admin, call, login, startServer } from "./helpers.js";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

test("a malformed JSON body is a JSON error, a well-formed one is not", async () => {
  const bad = await call(server, "POST", "/sessions/create", {
    headers: { ...admin, "content-type": "application/json" },
    body: '{"user_id": "bob"',
  });
  assert.equal(bad.status, 422, bad.text);
  assert.equal(bad.body.error, "invalid_input");
  assert.match(bad.body.detail, /invalid JSON/);
  assert.match(bad.headers.get("content-type"), /^application\/json/);
  const good = await call(server, "POST", "/sessions/create", {
    headers: { ...admin, "content-type": "application/json" },
    body: '{"user_id": "bob"}',
  });
  assert.equal(good.status, 200, good.text);
  const misspelt = await call(server, "POST", "/sessions/create", { headers: admin, json: { user_id: "bob", timout: 600 } });
  assert.equal(misspelt.status, 422, misspelt.text);
  const notJson = await call(server, "POST", "/sessions/create", {
    headers: { ...admin, "content-type": "text/plain" },
    body: '{"user_id": "bob"}',
  });
  assert.equal(notJson.status, 415, notJson.text);
});

test("a tampered token is refused with 401, the untampered one is accepted", async () => {
  const { session_id: token } = await login(server, "carol");
  const last = token.at(-1);
  const tampered = token.slice(0, -1) + (last === "A" ? "B" : "A");
  const ok = await call(server, "GET", "/sessions/validate", { headers: { "x-session-id": token } });
  assert.equal(ok.status, 200, ok.text);
  for (const bad of [tampered, `${token}x`, token.split(".")[0] + ".short"]) {
    const res = await call(server, "GET", "/sessions/validate", { headers: { "x-session-id": bad } });
    assert.equal(res.status, 401, `${bad}: ${res.text}`);
    assert.equal(res.body.error, "invalid_token");
  }
  const wrongKey = await call(server, "GET", "/sessions/stats", { headers: { authorization: "Bearer wrong-key-wrong-key" } });
  assert.equal(wrongKey.status, 401);
  assert.equal(wrongKey.body.error, "invalid_admin_key");
});

test("a body over 64 KiB is refused with 413, whether declared or streamed; one at the cap is read", async () => {
  const big = JSON.stringify({ user_id: "dave", metadata: { pad: "x".repeat(70 * 1024) } });
  const declared = await call(server, "POST", "/sessions/create", {
    headers: { ...admin, "content-type": "application/json" },
    body: big,
  });
  assert.equal(declared.status, 413, declared.text);
  assert.equal(declared.body.error, "payload_too_large");
  // Chunked, with no declared length: the host reads one byte past the cap, the component refuses.
  const streamed = await fetch(`${server.url}/sessions/create`, {
    method: "POST",
    headers: { ...admin, "content-type": "application/json" },
    body: new Blob([big]).stream(),
    duplex: "half",
  });
  assert.equal(streamed.status, 413, await streamed.text());
  // Control: exactly 64 KiB is read whole and judged on its content (metadata too large: 422).
  const atCap = JSON.stringify({ user_id: "dave", metadata: { pad: "" } });
  const padded = atCap.replace('"pad":""', `"pad":"${"y".repeat(64 * 1024 - atCap.length)}"`);
  assert.equal(Buffer.byteLength(padded), 64 * 1024);
  const cap = await call(server, "POST", "/sessions/create", { headers: { ...admin, "content-type": "application/json" }, body: padded });
  assert.equal(cap.status, 422, cap.text);
});

test("unknown routes and methods answer 404 and 405 as JSON", async () => {
  const missing = await call(server, "GET", "/nope");
  assert.equal(missing.status, 404);
  assert.equal(typeof missing.body.error, "string");
  const method = await call(server, "PUT", "/sessions/create", { headers: admin, json: {} });
  assert.equal(method.status, 405);
});

test("the peer comes from the socket: a forged spin-client-addr does not make a trusted proxy", async () => {
  const strict = await startServer({ SESSION_REQUIRE_HTTPS: "true", SESSION_TRUSTED_PROXIES: "10.9.8.7" });
  const trusted = await startServer({ SESSION_REQUIRE_HTTPS: "true", SESSION_TRUSTED_PROXIES: "127.0.0.1" });
  try {
    const forged = {
      "x-forwarded-proto": "https",
      "spin-client-addr": "10.9.8.7:443",
      "spin-full-url": "https://forged.example/sessions/stats",
      ...admin,
    };
    const refused = await call(strict, "GET", "/sessions/stats", { headers: forged });
    assert.equal(refused.status, 403, refused.text);
    assert.equal(refused.body.error, "https_required");
    // Control: the real peer (127.0.0.1) is trusted here, so its X-Forwarded-Proto is believed.
    const believed = await call(trusted, "GET", "/sessions/stats", { headers: forged });
    assert.equal(believed.status, 200, believed.text);
    assert.ok(believed.headers.get("strict-transport-security"));
    // And without the forwarding header the same peer is plain HTTP.
    const plain = await call(trusted, "GET", "/sessions/stats", { headers: admin });
    assert.equal(plain.status, 403, plain.text);
  } finally {
    await strict.stop();
    await trusted.stop();
  }
});

test("with no SESSION_ADMIN_KEY, `start` generates one beside the database, private, and it works", async () => {
  const keyless = await startServer({ SESSION_ADMIN_KEY: null });
  try {
    const { readFileSync, statSync } = await import("node:fs");
    const { join } = await import("node:path");
    const path = join(keyless.dir, "admin.key");
    const key = readFileSync(path, "utf8").trim();
    assert.match(key, /^[0-9a-f]{64}$/);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.ok(!keyless.log().includes(key), "the key is never printed");
    const ok = await call(keyless, "GET", "/sessions/stats", { headers: { authorization: `Bearer ${key}` } });
    assert.equal(ok.status, 200, ok.text);
    const wrong = await call(keyless, "GET", "/sessions/stats", { headers: admin });
    assert.equal(wrong.status, 401, wrong.text);
  } finally {
    await keyless.stop();
  }
});

test("a server made with createServer() and no admin key answers privileged routes 503", async () => {
  const { execFileSync } = await import("node:child_process");
  const { fileURLToPath } = await import("node:url");
  const { join } = await import("node:path");
  const { tempDir } = await import("./helpers.js");
  const temp = tempDir();
  try {
    const script = `
      import { createServer } from "zoe-session";
      const server = await createServer();
      server.listen(0, "127.0.0.1", async () => {
        const base = "http://127.0.0.1:" + server.address().port;
        const stats = await fetch(base + "/sessions/stats");
        const health = await fetch(base + "/health");
        console.log(JSON.stringify({ stats: stats.status, body: await stats.json(), health: health.status }));
        server.close();
      });`;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
      cwd: fileURLToPath(new URL("..", import.meta.url)),
      env: { PATH: process.env.PATH, SESSION_DB_PATH: join(temp.dir, "db.sqlite"), SESSION_LOG_REQUESTS: "false" },
      encoding: "utf8",
    });
    const seen = JSON.parse(out.trim().split("\n").at(-1));
    assert.equal(seen.stats, 503, out);
    assert.equal(seen.body.error, "admin_key_not_configured");
    assert.equal(seen.health, 200, "control: unprivileged routes answer");
  } finally {
    temp.cleanup();
  }
});

/** Sends `head` (a raw request head) on a fresh socket and resolves with the status and body. */
function rawRequest(server, head) {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => socket.write(head));
    let text = "";
    socket.on("data", (d) => (text += d));
    socket.on("end", () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
      resolve({ status, text, body: text.slice(text.indexOf("\r\n\r\n") + 4) });
    });
    socket.on("error", reject);
  });
}

// Issue 27, finding 3: the host built spin-full-url from `Host`, so `Host: x/admin/?` served the
// console for a request to /sessions/validate.
test("a Host header that is not an authority is refused before the component", async () => {
  for (const host of ["127.0.0.1/sessions/stats?x=", "x/admin/?", "user@x", "x#f", "a b"]) {
    const answer = await rawRequest(
      server,
      `GET /sessions/validate HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(answer.status, 400, `${host}: ${answer.text}`);
    assert.doesNotMatch(answer.text, /active_sessions|<html/i);
  }
  const twice = await rawRequest(
    server,
    "GET /sessions/validate HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
  );
  assert.equal(twice.status, 400, twice.text);
  // Control: a plain authority reaches the component, which asks for a token.
  for (const host of ["localhost:3000", "[::1]:8080", "sessions.example"]) {
    const answer = await rawRequest(
      server,
      `GET /sessions/validate HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(answer.status, 401, `${host}: ${answer.text}`);
  }
});
