// zoe-session in Node.js: the same WebAssembly component as on Spin and `serve`, transpiled by
// jco, with spin:sqlite on libsql and Spin variables from the SESSION_* environment variables.
//
//   import { sessions } from "zoe-session";
//   const { token } = sessions.create("alice", { timeoutSeconds: 3600 });
//   sessions.validate(token);
//
// Every function of `zoe:session/sessions` is synchronous; a failure is thrown as jco's
// ComponentError whose `payload` is the WIT `error` variant (`{ tag: "not-found" }`, …).
// Settings are read from the environment when the component first needs them, and kept.

export { sessions, incomingHandler } from "./component.js";
export { createServer } from "./server.js";
export { VARIABLE_TO_ENV, DB_PATH_ENV, DEFAULT_DB_PATH } from "./config.js";
export { POSTGRES_UNAVAILABLE } from "./postgres.js";
