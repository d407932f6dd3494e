// The admin key `npm start` uses when SESSION_ADMIN_KEY is unset, as the native host's
// `serve` does (host/src/admin_key.rs): generated once (32 random bytes, hex), kept beside the
// database as `admin.key` (mode 0600; `data/admin.key` for `:memory:`), read back on later
// starts, and never printed.

import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

export const FILE_NAME = "admin.key";

/** Where the key file lives for the database at `dbPath`. */
export function keyPathFor(dbPath) {
  if (dbPath === ":memory:") {
    return join("data", FILE_NAME);
  }
  const dir = dirname(dbPath);
  return join(dir || ".", FILE_NAME);
}

/** Reads the key at `path`, creating it if missing. Returns `{ key, created }`. */
export function loadOrCreate(path) {
  let text;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if (err.code !== "ENOENT") {
      throw err;
    }
    const key = randomBytes(32).toString("hex");
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeFileSync(path, `${key}\n`, { mode: 0o600, flag: "wx" });
    return { key, created: true };
  }
  const key = text.trim();
  if (key.length < 16) {
    throw new Error(`${path} holds no usable admin key (at least 16 characters); delete it to generate a new one`);
  }
  return { key, created: false };
}
