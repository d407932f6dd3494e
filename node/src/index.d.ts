// Types of the package entry. `sessions` is typed by jco's declarations of the component's
// `zoe:session/sessions` export (dist/, written by `npm run build`).
import type { Server } from "node:http";

export * as sessions from "../dist/interfaces/zoe-session-sessions.js";
export * as incomingHandler from "../dist/interfaces/wasi-http-incoming-handler.js";

export interface ServerOptions {
  /** Called when a component call traps or fails (the request gets a 500). */
  onTrap?: (err: unknown) => void;
  /** Deadline for the headers and the whole request, in ms (default 10000). */
  timeoutMs?: number;
}

/** An HTTP server (not yet listening) answering the REST API with the component. */
export function createServer(options?: ServerOptions): Promise<Server>;

/** Spin variable name → environment variable. */
export const VARIABLE_TO_ENV: Readonly<Record<string, string>>;
export const DB_PATH_ENV: "SESSION_DB_PATH";
export const DEFAULT_DB_PATH: string;
export const POSTGRES_UNAVAILABLE: string;
