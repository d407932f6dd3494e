#!/usr/bin/env node
// `npm start`: the REST API on http://HOST:PORT (default 127.0.0.1:3000), sessions in
// SESSION_DB_PATH (default data/sessions.db). With no SESSION_ADMIN_KEY, a key is generated
// into admin.key beside the database, as the native host's `serve` does.

import { keyPathFor, loadOrCreate } from "../src/admin-key.js";
import { databasePath } from "../src/config.js";

const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST || "127.0.0.1";
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PORT must be a port number, not ${JSON.stringify(process.env.PORT)}`);
  process.exit(2);
}

if (!process.env.SESSION_ADMIN_KEY) {
  const path = keyPathFor(databasePath());
  const { key, created } = loadOrCreate(path);
  process.env.SESSION_ADMIN_KEY = key;
  console.error(`admin key ${created ? "generated" : "read"}: ${path} (send it as \`Authorization: Bearer <key>\`)`);
}

const { sessions, createServer } = await import("../src/index.js");

// Check every setting now (as `serve` does): `stats` reads them all.
try {
  sessions.stats();
} catch (err) {
  const payload = err?.payload;
  console.error(`zoe-session cannot start: ${payload ? `${payload.tag}: ${payload.val ?? ""}` : err}`);
  process.exit(1);
}

const server = await createServer({
  onTrap(err) {
    // A trap may leave the one component instance in a broken state: stop, and let the
    // supervisor start a fresh process.
    console.error(`zoe-session: the component failed, stopping: ${err?.stack ?? err}`);
    process.exitCode = 1;
    server.close();
    server.closeAllConnections?.();
  },
});

// Expired sessions are deleted in the background every cleanup_interval seconds, as `serve` does.
const interval = Number(process.env.SESSION_CLEANUP_INTERVAL || 300);
const cleanup = setInterval(
  () => {
    try {
      sessions.cleanup(10_000);
    } catch (err) {
      console.error(`cleanup failed: ${err?.payload ? JSON.stringify(err.payload) : err}`);
    }
  },
  Math.max(1, Number.isFinite(interval) ? interval : 300) * 1000,
);
cleanup.unref();

server.listen(port, host, () => {
  const { address, port: bound } = server.address();
  const shown = address.includes(":") ? `[${address}]` : address;
  console.error(`zoe-session listening on http://${shown}:${bound}`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    server.close(() => process.exit(process.exitCode ?? 0));
    server.closeIdleConnections?.();
  });
}
