// `wasi:cli` for the component: stdin, stdout and stderr on this host's `wasi:io` streams
// (src/wasi/io.js) — stdout and stderr write to the process's own, synchronously (the
// component logs JSON lines to stderr); stdin is empty. The component sees no environment
// variables and no arguments (its settings are Spin variables, src/variables.js), and no
// terminal.

import { InputStream, fdOutputStream } from "./io.js";

const stdout = fdOutputStream(1);
const stderr = fdOutputStream(2);

export function getStdout() {
  return stdout;
}

export function getStderr() {
  return stderr;
}

export function getStdin() {
  return new InputStream();
}

export function getEnvironment() {
  return [];
}

export function getArguments() {
  return [];
}

export function initialCwd() {
  return undefined;
}

/** `exit: func(status: result)`: the component never calls it; if it does, the call fails. */
export function exit(status) {
  throw new Error(`the component asked to exit (${status?.tag ?? "?"}); the Node host does not stop for it`);
}

export class TerminalInput {}
export class TerminalOutput {}

export function getTerminalStdin() {
  return undefined;
}
export function getTerminalStdout() {
  return undefined;
}
export function getTerminalStderr() {
  return undefined;
}
