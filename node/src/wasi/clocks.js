// `wasi:clocks` for the component: the wall clock from Date.now() (the component works in
// milliseconds), the monotonic clock from process.hrtime, and its pollables this host's
// (src/wasi/io.js).

import { Pollable } from "./io.js";

/** `wasi:clocks/wall-clock` `now`. */
export function wallNow() {
  const ms = BigInt(Date.now());
  return { seconds: ms / 1000n, nanoseconds: Number(ms % 1000n) * 1_000_000 };
}

/** `wasi:clocks/wall-clock` `resolution`. */
export function wallResolution() {
  return { seconds: 0n, nanoseconds: 1_000_000 };
}

/** `wasi:clocks/monotonic-clock` `now`, in ns. */
export function now() {
  return process.hrtime.bigint();
}

export function resolution() {
  return 1n;
}

export function subscribeInstant(when) {
  return new Pollable(when);
}

export function subscribeDuration(duration) {
  return new Pollable(process.hrtime.bigint() + duration);
}
