// `wasi:random` for the component, from Node's CSPRNG (tokens' secrets come from here).

import { randomBytes } from "node:crypto";

export function getRandomBytes(len) {
  return new Uint8Array(randomBytes(Number(len)));
}

export function getRandomU64() {
  return randomBytes(8).readBigUInt64LE();
}

/** `wasi:random/insecure-seed` */
export function insecureSeed() {
  const bytes = randomBytes(16);
  return [bytes.readBigUInt64LE(0), bytes.readBigUInt64LE(8)];
}

/** `wasi:random/insecure` */
export function getInsecureRandomBytes(len) {
  return getRandomBytes(len);
}

export function getInsecureRandomU64() {
  return getRandomU64();
}
