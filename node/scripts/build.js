#!/usr/bin/env node
// `npm run build`: transpiles the component with jco into dist/, mapping the imports this
// package implements to its own modules (jco's `--map`, here through its JS API), with
// TypeScript declarations. Skips the work when dist/ already holds this exact component
// transpiled with these settings (`--force` redoes it).
//
// The component is ZOE_SESSION_WASM, default ../target/component/wasm32-wasip2/release/zoe_session.wasm,
// which `cargo build --workspace` (from the repository root) builds.

import { transpile } from "@bytecodealliance/jco";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");

/** Each import this package provides, and the module (relative to dist/) that provides it. */
export const MAP = {
  "spin:sqlite/sqlite@3.0.0": "../src/sqlite.js",
  "spin:postgres/postgres@4.0.0": "../src/postgres.js",
  "fermyon:spin/key-value@2.0.0": "../src/key-value.js",
  "fermyon:spin/variables@2.0.0": "../src/variables.js",
  // WASI, in memory and synchronous on Node's thread (src/wasi/http.js says why this package
  // does not use preview2-shim, whose every stream call goes through a worker thread).
  "wasi:http/types": "../src/wasi/http.js",
  "wasi:io/error": "../src/wasi/io.js",
  "wasi:io/poll": "../src/wasi/io.js",
  "wasi:io/streams": "../src/wasi/io.js",
  "wasi:cli/stdin": "../src/wasi/cli.js",
  "wasi:cli/stdout": "../src/wasi/cli.js",
  "wasi:cli/stderr": "../src/wasi/cli.js",
  "wasi:cli/environment": "../src/wasi/cli.js",
  "wasi:cli/exit": "../src/wasi/cli.js",
  "wasi:cli/terminal-input": "../src/wasi/cli.js",
  "wasi:cli/terminal-output": "../src/wasi/cli.js",
  "wasi:cli/terminal-stdin": "../src/wasi/cli.js",
  "wasi:cli/terminal-stdout": "../src/wasi/cli.js",
  "wasi:cli/terminal-stderr": "../src/wasi/cli.js",
  "wasi:clocks/monotonic-clock": "../src/wasi/clocks.js",
  "wasi:clocks/wall-clock": "../src/wasi/wall-clock.js",
  "wasi:random/random": "../src/wasi/random.js",
  "wasi:random/insecure": "../src/wasi/random.js",
  "wasi:random/insecure-seed": "../src/wasi/random.js",
};

export function componentPath() {
  return process.env.ZOE_SESSION_WASM
    ? resolve(process.env.ZOE_SESSION_WASM)
    : resolve(root, "../target/component/wasm32-wasip2/release/zoe_session.wasm");
}

async function main() {
  const force = process.argv.includes("--force");
  const path = componentPath();
  if (!existsSync(path)) {
    console.error(
      `zoe-session: no component at ${path}.\n` +
        "Build it from the repository root with `cargo build --workspace` (it lands at " +
        "target/component/wasm32-wasip2/release/zoe_session.wasm), or set ZOE_SESSION_WASM to a built zoe_session.wasm.",
    );
    process.exit(1);
  }
  const bytes = readFileSync(path);
  const jcoVersion = JSON.parse(readFileSync(join(root, "node_modules/@bytecodealliance/jco/package.json"), "utf8")).version;
  const stamp = createHash("sha256").update(bytes).update(jcoVersion).update(JSON.stringify(MAP)).digest("hex");
  const stampFile = join(dist, ".stamp");
  if (!force && existsSync(stampFile) && readFileSync(stampFile, "utf8") === stamp && existsSync(join(dist, "zoe_session.js"))) {
    console.error(`zoe-session: dist/ is up to date with ${path}`);
    return;
  }
  const { files } = await transpile(bytes, { name: "zoe_session", map: MAP, quiet: true });
  rmSync(dist, { recursive: true, force: true });
  for (const [name, content] of Object.entries(files)) {
    const target = join(dist, name);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, content);
  }
  writeFileSync(stampFile, stamp);
  console.error(`zoe-session: transpiled ${path} into dist/ (${Object.keys(files).length} files, jco ${jcoVersion})`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
