// The transpiled component (dist/, made by `npm run build`), loaded with a clear message
// when it has not been built yet.

import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const entry = new URL("../dist/zoe_session.js", import.meta.url);

if (!existsSync(fileURLToPath(entry))) {
  throw new Error(
    "zoe-session: the component is not transpiled yet; run `npm run build` in node/ " +
      "(it reads the component from ZOE_SESSION_WASM, default " +
      "../target/component/wasm32-wasip2/release/zoe_session.wasm, which `cargo build --workspace` builds)",
  );
}

const component = await import(entry.href);

/** The `zoe:session/sessions@0.2.0` export: every function of the interface, synchronous. */
export const sessions = component.sessions;

/** The `wasi:http/incoming-handler@0.2.0` export. */
export const incomingHandler = component.incomingHandler;
