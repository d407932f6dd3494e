// Shared by the tests: a server in a child process (its own component instance, settings and
// temporary database) and small HTTP helpers over loopback.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ADMIN_KEY = "test-admin-key-0123456789abcdef";
const BIN = fileURLToPath(new URL("../bin/zoe-session.js", import.meta.url));

/** A fresh temporary directory, removed by the returned `cleanup`. */
export function tempDir() {
  const dir = mkdtempSync(join(tmpdir(), "zoe-session-node-"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Starts `bin/zoe-session.js` on 127.0.0.1, port 0, with a database in a new temporary
 * directory and `env` on top of a clean SESSION_* environment (admin key ADMIN_KEY unless
 * `env.SESSION_ADMIN_KEY` is null).
 */
export async function startServer(env = {}) {
  const { dir, cleanup } = tempDir();
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("SESSION_")));
  const childEnv = {
    ...base,
    PORT: "0",
    HOST: "127.0.0.1",
    SESSION_DB_PATH: join(dir, "sessions.db"),
    SESSION_ADMIN_KEY: ADMIN_KEY,
    SESSION_LOG_REQUESTS: "false",
    ...env,
  };
  for (const [k, v] of Object.entries(childEnv)) {
    if (v === null || v === undefined) {
      delete childEnv[k];
    }
  }
  const child = spawn(process.execPath, [BIN], { env: childEnv, cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  child.stdout.on("data", (d) => (log += d));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${log}`)), 20_000);
    child.stderr.on("data", (d) => {
      log += d;
      const m = /listening on (http:\/\/\S+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${log}`));
    });
  });
  return {
    url,
    dir,
    log: () => log,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
      cleanup();
    },
  };
}

/** One request; the answer with its parsed JSON body (or null). */
export async function call(server, method, path, { headers = {}, body, json } = {}) {
  const init = { method, headers: { ...headers } };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["content-type"] = "application/json";
  } else if (body !== undefined) {
    init.body = body;
  }
  const res = await fetch(server.url + path, init);
  const text = await res.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  return { status: res.status, headers: res.headers, text, body: parsed };
}

export const admin = { authorization: `Bearer ${ADMIN_KEY}` };

/** Creates a session for `user` through the API; returns the answer's body. */
export async function login(server, user, extra = {}) {
  const res = await call(server, "POST", "/sessions/create", { headers: admin, json: { user_id: user, ...extra } });
  if (res.status !== 200) {
    throw new Error(`create for ${user}: ${res.status} ${res.text}`);
  }
  return res.body;
}
