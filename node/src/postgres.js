// `spin:postgres/postgres@4.0.0` under Node: not available. jco calls imports synchronously,
// and every PostgreSQL client for Node is asynchronous, so `open` always fails with the WIT
// `connection-failed` error and the component reports it as a storage error. Leave
// SESSION_DATABASE_URL empty (SQLite), or run the component on Spin or `serve` for PostgreSQL.

export const POSTGRES_UNAVAILABLE =
  "PostgreSQL is not available in the Node host; use SQLite (leave SESSION_DATABASE_URL empty) or serve/Spin";

export class PostgresError extends Error {
  constructor(payload) {
    super(typeof payload.val === "string" ? payload.val : payload.tag);
    this.payload = payload;
  }
}

export class Connection {
  constructor() {
    throw new PostgresError({ tag: "connection-failed", val: POSTGRES_UNAVAILABLE });
  }

  /** `open: static func(address: string) -> result<connection, error>` */
  static open(_address) {
    throw new PostgresError({ tag: "connection-failed", val: POSTGRES_UNAVAILABLE });
  }

  query() {
    throw new PostgresError({ tag: "connection-failed", val: POSTGRES_UNAVAILABLE });
  }

  execute() {
    throw new PostgresError({ tag: "connection-failed", val: POSTGRES_UNAVAILABLE });
  }
}
