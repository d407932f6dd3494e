// `wasi:http/types@0.2.0` for the server side of the component's `wasi:http/incoming-handler`
// export, in memory: the request (headers and a body already read) is handed to the guest
// whole, and the response's status, headers and body are collected until `handle` returns.
// This is what lets the host present the request as Spin does (src/server.js): preview2-shim's
// HTTPServer gives the guest neither the peer's address nor a way to replace forged `spin-*`
// headers. Outgoing requests (`wasi:http/outgoing-handler`) are not offered by this host.

import { InputStream, OutputStream, Pollable } from "./io.js";

const dispose = Symbol.dispose ?? Symbol.for("dispose");
const encoder = new TextEncoder();

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function headerError(tag) {
  return { tag };
}

function checkName(name) {
  if (!TOKEN.test(name)) {
    throw headerError("invalid-syntax");
  }
}

function checkValue(value) {
  for (const byte of value) {
    if ((byte < 0x20 && byte !== 0x09) || byte === 0x7f) {
      throw headerError("invalid-syntax");
    }
  }
}

/** `fields`: names compared case-insensitively, kept in the order given. */
export class Fields {
  #entries = [];
  #immutable = false;

  constructor() {}

  static fromList(entries) {
    const fields = new Fields();
    for (const [name, value] of entries) {
      checkName(name);
      checkValue(value);
      fields.#entries.push([name, Uint8Array.from(value)]);
    }
    return fields;
  }

  /** Host side: immutable fields from `[name, string]` pairs. */
  static _immutable(entries) {
    const fields = new Fields();
    fields.#entries = entries.map(([name, value]) => [name, encoder.encode(value)]);
    fields.#immutable = true;
    return fields;
  }

  /** Host side: the entries with values as bytes. */
  static _entries(fields) {
    return fields.#entries;
  }

  #mutable() {
    if (this.#immutable) {
      throw headerError("immutable");
    }
  }

  get(name) {
    const key = name.toLowerCase();
    return this.#entries.filter(([n]) => n.toLowerCase() === key).map(([, v]) => Uint8Array.from(v));
  }

  has(name) {
    const key = name.toLowerCase();
    return this.#entries.some(([n]) => n.toLowerCase() === key);
  }

  set(name, values) {
    this.#mutable();
    checkName(name);
    values.forEach(checkValue);
    const key = name.toLowerCase();
    this.#entries = this.#entries.filter(([n]) => n.toLowerCase() !== key);
    for (const value of values) {
      this.#entries.push([name, Uint8Array.from(value)]);
    }
  }

  delete(name) {
    this.#mutable();
    checkName(name);
    const key = name.toLowerCase();
    this.#entries = this.#entries.filter(([n]) => n.toLowerCase() !== key);
  }

  append(name, value) {
    this.#mutable();
    checkName(name);
    checkValue(value);
    this.#entries.push([name, Uint8Array.from(value)]);
  }

  entries() {
    return this.#entries.map(([n, v]) => [n, Uint8Array.from(v)]);
  }

  clone() {
    const fields = new Fields();
    fields.#entries = this.#entries.map(([n, v]) => [n, Uint8Array.from(v)]);
    return fields;
  }

  [dispose]() {}
}

const METHODS = new Set(["get", "head", "post", "put", "delete", "connect", "options", "trace", "patch"]);

function methodVariant(method) {
  const lower = method.toLowerCase();
  return METHODS.has(lower) && method === method.toUpperCase() ? { tag: lower } : { tag: "other", val: method };
}

export class IncomingBody {
  #stream;
  constructor(token, data) {
    if (token !== HOST) {
      throw new TypeError("an incoming-body is made by the host");
    }
    this.#stream = new InputStream(data);
  }
  stream() {
    if (!this.#stream) {
      throw undefined;
    }
    const stream = this.#stream;
    this.#stream = null;
    return stream;
  }
  static finish(_body) {
    return new FutureTrailers(HOST);
  }
  [dispose]() {}
}

export class FutureTrailers {
  #taken = false;
  constructor(token) {
    if (token !== HOST) {
      throw new TypeError("future-trailers are made by the host");
    }
  }
  subscribe() {
    return new Pollable();
  }
  get() {
    if (this.#taken) {
      return { tag: "err", val: undefined };
    }
    this.#taken = true;
    return { tag: "ok", val: { tag: "ok", val: undefined } };
  }
  [dispose]() {}
}

/** Proves to a constructor that this host, not the guest, is making the resource. */
const HOST = Symbol("host");

export class IncomingRequest {
  #method;
  #pathWithQuery;
  #scheme;
  #authority;
  #headers;
  #body;

  constructor(token, { method, pathWithQuery, scheme, authority, headers, body }) {
    if (token !== HOST) {
      throw new TypeError("an incoming-request is made by the host");
    }
    this.#method = methodVariant(method);
    this.#pathWithQuery = pathWithQuery;
    this.#scheme = scheme === "https" ? { tag: "HTTPS" } : { tag: "HTTP" };
    this.#authority = authority;
    this.#headers = Fields._immutable(headers);
    this.#body = body;
  }

  method() {
    return this.#method;
  }
  pathWithQuery() {
    return this.#pathWithQuery;
  }
  scheme() {
    return this.#scheme;
  }
  authority() {
    return this.#authority;
  }
  headers() {
    return this.#headers;
  }
  consume() {
    if (this.#body === null) {
      throw undefined;
    }
    const body = new IncomingBody(HOST, this.#body);
    this.#body = null;
    return body;
  }
  [dispose]() {}
}

export class OutgoingBody {
  #chunks = [];
  #stream = null;
  #finished = false;

  constructor(token) {
    if (token !== HOST) {
      throw new TypeError("an outgoing-body is made by the host");
    }
  }

  write() {
    if (this.#stream) {
      throw undefined;
    }
    this.#stream = new OutputStream((bytes) => this.#chunks.push(bytes));
    return this.#stream;
  }

  static finish(body, _trailers) {
    body.#finished = true;
    if (body.#stream) {
      OutputStream._close(body.#stream);
    }
  }

  /** Host side: the body written so far. */
  static _bytes(body) {
    return Buffer.concat(body.#chunks);
  }

  [dispose]() {}
}

export class OutgoingResponse {
  #status = 200;
  #headers;
  #body = null;

  constructor(headers) {
    this.#headers = headers;
  }
  statusCode() {
    return this.#status;
  }
  setStatusCode(status) {
    if (!Number.isInteger(status) || status < 100 || status > 999) {
      throw undefined;
    }
    this.#status = status;
  }
  headers() {
    return this.#headers;
  }
  body() {
    if (this.#body) {
      throw undefined;
    }
    this.#body = new OutgoingBody(HOST);
    return this.#body;
  }
  /** Host side: status, `[name, bytes]` headers and body bytes. */
  static _take(response) {
    return {
      status: response.#status,
      headers: Fields._entries(response.#headers),
      body: response.#body ? OutgoingBody._bytes(response.#body) : Buffer.alloc(0),
    };
  }
  [dispose]() {}
}

export class ResponseOutparam {
  #result = null;
  constructor(token) {
    if (token !== HOST) {
      throw new TypeError("a response-outparam is made by the host");
    }
  }
  static set(param, response) {
    param.#result = response;
  }
  /** Host side: what the guest set, or null. */
  static _result(param) {
    return param.#result;
  }
  [dispose]() {}
}

/** Host side: a request and its out-parameter for one call of `handle`. */
export function hostRequest(parts) {
  return { request: new IncomingRequest(HOST, parts), outparam: new ResponseOutparam(HOST) };
}

/** Host side: the response the guest set: `{ status, headers, body }`, or throws its error. */
export function hostResponse(outparam) {
  const result = ResponseOutparam._result(outparam);
  if (result === null) {
    throw new Error("the component returned without setting a response");
  }
  if (result.tag !== "ok") {
    throw new Error(`the component answered with an error: ${JSON.stringify(result.val)}`);
  }
  return OutgoingResponse._take(result.val);
}

function unsupported() {
  throw new Error("outgoing HTTP requests are not available in the Node host");
}

export class OutgoingRequest {
  constructor() {
    unsupported();
  }
}
export class RequestOptions {
  constructor() {
    unsupported();
  }
}
export class IncomingResponse {
  constructor() {
    unsupported();
  }
}
export class FutureIncomingResponse {
  constructor() {
    unsupported();
  }
}

/** `http-error-code: func(err: borrow<io-error>) -> option<error-code>` */
export function httpErrorCode(_err) {
  return undefined;
}
