// `fermyon:spin/variables@2.0.0` for the component, answered from the SESSION_* environment
// variables (src/config.js), with the rules of the native host (host/src/variables.rs):
// a name is lowercase letters, digits and `_`, starting with a letter; a malformed name is
// `invalid-name`, a well-formed one that is not set (or not in the table) is `undefined`,
// and the component then uses its default.
//
// jco lowers `result<string, error>` from an import by calling the function: a return is
// `ok`, a thrown value is `err` (its `payload` if it has one, else the value itself).

import { REQUEST_SETTINGS, VARIABLE_TO_ENV } from "./config.js";

const WELL_FORMED = /^[a-z][a-z0-9_]*$/;

/** The error jco turns into the WIT `error` variant. */
export class VariablesError extends Error {
  constructor(payload) {
    super(`${payload.tag}: ${payload.val}`);
    this.payload = payload;
  }
}

/**
 * The value of Spin variable `name`, or the environment's answer to whether it has one.
 * @param {string} name
 * @param {Record<string, string | undefined>} [env]
 * @returns {string}
 */
export function lookup(name, env = process.env) {
  if (!WELL_FORMED.test(name)) {
    throw new VariablesError({ tag: "invalid-name", val: `invalid variable name ${JSON.stringify(name)}` });
  }
  if (name === REQUEST_SETTINGS.variable) {
    return REQUEST_SETTINGS.settings
      .map((setting) => `${setting}=${env[VARIABLE_TO_ENV[setting]] ?? ""}`)
      .join("\n");
  }
  const envName = Object.hasOwn(VARIABLE_TO_ENV, name) ? VARIABLE_TO_ENV[name] : undefined;
  const value = envName === undefined ? undefined : env[envName];
  if (value === undefined) {
    throw new VariablesError({ tag: "undefined", val: `no variable named ${JSON.stringify(name)}` });
  }
  return value;
}

/** The import itself: `get: func(name: string) -> result<string, error>`. */
export function get(name) {
  return lookup(name);
}
