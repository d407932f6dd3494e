// `wasi:io` (error, poll, streams) for the component, in memory and synchronous.
//
// The component's only streams are a request body this host has already read, a response body
// it collects, and stderr, so every stream is ready at once and nothing has to wait on an I/O
// thread (preview2-shim routes every stream call through a worker thread; see README.md for why
// this host provides its own). A clock pollable is ready at its deadline; blocking on one sleeps.

import { writeSync } from "node:fs";

const dispose = Symbol.dispose ?? Symbol.for("dispose");

/** `wasi:io/error` `error`. */
class IoError {
  #message;
  constructor(message) {
    this.#message = String(message);
  }
  toDebugString() {
    return this.#message;
  }
}
export { IoError as Error };

const sleeper = new Int32Array(new SharedArrayBuffer(4));

function sleepUntil(deadlineNs) {
  for (;;) {
    const left = deadlineNs - process.hrtime.bigint();
    if (left <= 0n) {
      return;
    }
    Atomics.wait(sleeper, 0, 0, Math.max(1, Number(left / 1_000_000n)));
  }
}

/** `wasi:io/poll` `pollable`: ready now, or at a monotonic-clock deadline (ns). */
export class Pollable {
  #deadline;
  constructor(deadlineNs = null) {
    this.#deadline = deadlineNs;
  }
  static _deadline(pollable) {
    return pollable.#deadline;
  }
  ready() {
    return this.#deadline === null || process.hrtime.bigint() >= this.#deadline;
  }
  block() {
    if (this.#deadline !== null) {
      sleepUntil(this.#deadline);
    }
  }
  [dispose]() {}
}

/** `poll: func(in: list<borrow<pollable>>) -> list<u32>` */
export function poll(list) {
  const ready = () => list.flatMap((p, i) => (p.ready() ? [i] : []));
  let indices = ready();
  if (indices.length === 0 && list.length > 0) {
    const deadlines = list.map((p) => Pollable._deadline(p)).filter((d) => d !== null);
    sleepUntil(deadlines.reduce((a, b) => (b < a ? b : a)));
    indices = ready();
  }
  return new Uint32Array(indices);
}

const closed = () => ({ tag: "closed" });

/** `wasi:io/streams` `input-stream` over bytes already in memory. */
export class InputStream {
  #data;
  #offset = 0;
  constructor(data = new Uint8Array(0)) {
    this.#data = data;
  }
  read(len) {
    if (this.#offset >= this.#data.length) {
      throw closed();
    }
    const end = Math.min(this.#data.length, this.#offset + Number(len));
    const chunk = this.#data.slice(this.#offset, end);
    this.#offset = end;
    return chunk;
  }
  blockingRead(len) {
    return this.read(len);
  }
  skip(len) {
    const chunk = this.read(len);
    return BigInt(chunk.length);
  }
  blockingSkip(len) {
    return this.skip(len);
  }
  subscribe() {
    return new Pollable();
  }
  [dispose]() {}
}

/** How much `check-write` permits at once. */
const WRITE_BUDGET = 1n << 20n;

/**
 * `wasi:io/streams` `output-stream`: a sink function receives each write (a copy).
 */
export class OutputStream {
  #sink;
  #closed = false;
  constructor(sink) {
    this.#sink = sink;
  }
  static _close(stream) {
    stream.#closed = true;
  }
  #put(buf) {
    if (this.#closed) {
      throw closed();
    }
    this.#sink(Uint8Array.from(buf));
  }
  checkWrite() {
    if (this.#closed) {
      throw closed();
    }
    return WRITE_BUDGET;
  }
  write(buf) {
    this.#put(buf);
  }
  blockingWriteAndFlush(buf) {
    this.#put(buf);
  }
  flush() {
    if (this.#closed) {
      throw closed();
    }
  }
  blockingFlush() {
    this.flush();
  }
  subscribe() {
    return new Pollable();
  }
  writeZeroes(len) {
    this.#put(new Uint8Array(Number(len)));
  }
  blockingWriteZeroesAndFlush(len) {
    this.writeZeroes(len);
  }
  splice(src, len) {
    let chunk;
    try {
      chunk = src.read(len);
    } catch (err) {
      if (err?.tag === "closed") {
        throw closed();
      }
      throw err;
    }
    this.#put(chunk);
    return BigInt(chunk.length);
  }
  blockingSplice(src, len) {
    return this.splice(src, len);
  }
  [dispose]() {}
}

/** An output stream onto a file descriptor of this process (1 or 2), written synchronously. */
export function fdOutputStream(fd) {
  return new OutputStream((bytes) => {
    let done = 0;
    while (done < bytes.length) {
      done += writeSync(fd, bytes, done);
    }
  });
}
