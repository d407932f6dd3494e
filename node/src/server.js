// The REST API over Node's HTTP server, through the component's `wasi:http/incoming-handler`
// export. Each request is presented as Spin presents it (host/src/serve/spin_request.rs):
// the body read first (up to one byte past the component's 64 KiB cap, so the component
// refuses it with its own 413), every `spin-*` header the client sent removed, and Spin's set
// (`spin-full-url`, `spin-path-info`, `spin-client-addr`, …) added from the connection.
//
// jco runs the component synchronously on Node's thread: one request is inside the component
// at a time, and its database work (libsql, synchronous) runs on the same thread.

import { createServer as createHttpServer } from "node:http";
import { hostRequest, hostResponse } from "./wasi/http.js";

/** The most of a request body the component accepts (core/src/http/request.rs, MAX_BODY_BYTES). */
export const MAX_BODY_BYTES = 64 * 1024;

const decoder = new TextDecoder();

/** `address:port` as Rust's `SocketAddr` prints it (IPv6 in brackets). */
export function socketAddr(address, port) {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Reads the body, stopping one byte past the cap; a declared length over the cap is not read. */
function readBody(req) {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > MAX_BODY_BYTES) {
    return Promise.resolve({ body: Buffer.alloc(0), cut: true });
  }
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    let done = false;
    const finish = (cut) => {
      if (!done) {
        done = true;
        resolve({ body: Buffer.concat(chunks).subarray(0, MAX_BODY_BYTES + 1), cut });
      }
    };
    req.on("data", (chunk) => {
      if (done) {
        return;
      }
      chunks.push(chunk);
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        finish(true);
      }
    });
    req.on("end", () => finish(false));
    req.on("error", (err) => {
      if (!done) {
        done = true;
        reject(err);
      }
    });
  });
}

/**
 * The request as the component gets it: `[name, value]` headers in the client's order, less
 * any `spin-*`, plus Spin's own.
 */
/**
 * A `Host` value as RFC 3986 allows an authority there: a registered name or IPv4 address
 * (unreserved, sub-delims, percent-escapes) or a bracketed IPv6 address, and an optional port.
 * No path, query, fragment, userinfo or whitespace.
 */
const AUTHORITY = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(?::[0-9]{1,5})?$/;

export function presentLikeSpin(req, listen) {
  const headers = [];
  const raw = req.rawHeaders;
  const hosts = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (name === "host") {
      hosts.push(raw[i + 1]);
    }
    if (!name.startsWith("spin-")) {
      headers.push([name, raw[i + 1]]);
    }
  }
  // `Host` must be an authority and nothing more: a path in it would otherwise become the
  // path of spin-full-url (issue 27, as in the Rust host). Sent twice, it is ambiguous.
  if (hosts.length > 1 || (hosts.length === 1 && !AUTHORITY.test(hosts[0]))) {
    return null;
  }
  const authority = hosts[0] ?? listen;
  const pathWithQuery = req.url.startsWith("/") ? req.url : "/";
  const fullUrl = `http://${authority}${pathWithQuery}`;
  let path;
  try {
    path = new URL(fullUrl).pathname;
  } catch {
    return null;
  }
  const queryAt = pathWithQuery.indexOf("?");
  const pathInfo = queryAt === -1 ? pathWithQuery : pathWithQuery.slice(0, queryAt);
  headers.push(
    ["spin-full-url", fullUrl],
    ["spin-path-info", pathInfo || path],
    ["spin-matched-route", "/..."],
    ["spin-raw-component-route", "/..."],
    ["spin-component-route", ""],
    ["spin-base-path", "/"],
    ["spin-client-addr", socketAddr(req.socket.remoteAddress ?? "0.0.0.0", req.socket.remotePort ?? 0)],
  );
  return { method: req.method, pathWithQuery, scheme: "http", authority, headers };
}

function plainError(res, status, error, detail) {
  const body = JSON.stringify({ error, detail });
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

/**
 * Runs one request through `handler.handle` and writes the answer.
 * @param {{ handle: Function }} handler the component's incoming-handler export
 */
export async function serveRequest(handler, req, res, listen, onTrap) {
  let read;
  try {
    read = await readBody(req);
  } catch {
    res.destroy();
    return;
  }
  const parts = presentLikeSpin(req, listen);
  if (!parts) {
    plainError(res, 400, "bad_request", "invalid Host header or request target");
    return;
  }
  const { request, outparam } = hostRequest({ ...parts, body: read.body });
  let answer;
  try {
    handler.handle(request, outparam);
    answer = hostResponse(outparam);
  } catch (err) {
    plainError(res, 500, "internal", "the request failed inside the component");
    onTrap?.(err);
    return;
  }
  const flat = [];
  let hasLength = false;
  for (const [name, value] of answer.headers) {
    if (name.toLowerCase() === "content-length") {
      hasLength = true;
    }
    flat.push(name, decoder.decode(value));
  }
  if (!hasLength && req.method !== "HEAD") {
    flat.push("content-length", String(answer.body.length));
  }
  if (read.cut) {
    // The rest of an oversized body is not read: close instead of draining it.
    flat.push("connection", "close");
  }
  res.writeHead(answer.status, flat);
  res.end(answer.body);
}

/**
 * An HTTP server answering with the component. Call `listen` on it as usual.
 * @param {object} [options]
 * @param {{ handle: Function }} [options.handler] defaults to the component's export
 * @param {(err: unknown) => void} [options.onTrap] called when the component traps or fails
 * @param {number} [options.timeoutMs] headers and whole-request deadline (default 10 s)
 */
export async function createServer(options = {}) {
  const handler = options.handler ?? (await import("./component.js")).incomingHandler;
  const onTrap =
    options.onTrap ??
    ((err) => {
      process.stderr.write(`${JSON.stringify({ level: "ERROR", message: "component call failed", error: String(err?.stack ?? err) })}\n`);
    });
  const timeout = options.timeoutMs ?? 10_000;
  const server = createHttpServer({ requestTimeout: timeout, headersTimeout: timeout });
  server.on("request", (req, res) => {
    const address = server.address();
    const listen = address && typeof address === "object" ? socketAddr(address.address, address.port) : "localhost";
    serveRequest(handler, req, res, listen, onTrap).catch((err) => {
      onTrap(err);
      if (!res.headersSent) {
        plainError(res, 500, "internal", "the request failed");
      } else {
        res.destroy();
      }
    });
  });
  return server;
}
