// The one table of settings in this package: each Spin variable the component reads and the
// environment variable that supplies it, as zoe-session's settings crate defines them
// (config/src/lib.rs, `SETTINGS` and `REQUEST_SETTINGS`; tests/configuration.rs checks that
// this file agrees). Everything in this package that needs a setting reads it from here.

/** Spin variable name → environment variable. */
export const VARIABLE_TO_ENV = Object.freeze({
  default_timeout: "SESSION_DEFAULT_TIMEOUT",
  max_timeout: "SESSION_MAX_TIMEOUT",
  min_timeout: "SESSION_MIN_TIMEOUT",
  absolute_lifetime: "SESSION_ABSOLUTE_LIFETIME",
  cleanup_interval: "SESSION_CLEANUP_INTERVAL",
  max_per_user: "SESSION_MAX_PER_USER",
  limit_policy: "SESSION_LIMIT_POLICY",
  require_https: "SESSION_REQUIRE_HTTPS",
  secure_cookies: "SESSION_SECURE_COOKIES",
  session_header: "SESSION_HEADER",
  auto_update: "SESSION_AUTO_UPDATE",
  protected_paths: "SESSION_PROTECTED_PATHS",
  excluded_paths: "SESSION_EXCLUDED_PATHS",
  log_level: "SESSION_LOG_LEVEL",
  log_requests: "SESSION_LOG_REQUESTS",
  admin_key: "SESSION_ADMIN_KEY",
  max_metadata_bytes: "SESSION_MAX_METADATA_BYTES",
  trusted_proxies: "SESSION_TRUSTED_PROXIES",
  database_url: "SESSION_DATABASE_URL",
  key_value_store: "SESSION_KEY_VALUE_STORE",
  token_reuse_detection: "SESSION_TOKEN_REUSE_DETECTION",
  audit_events: "SESSION_AUDIT_EVENTS",
  record_devices: "SESSION_RECORD_DEVICES",
  allowed_origins: "SESSION_ALLOWED_ORIGINS",
  optional_paths: "SESSION_OPTIONAL_PATHS",
  required_roles: "SESSION_REQUIRED_ROLES",
  required_permissions: "SESSION_REQUIRED_PERMISSIONS",
  login_url: "SESSION_LOGIN_URL",
});

/**
 * The settings every request reads, handed to the component in one variable (one
 * `setting=value` line each, every setting its line), as spin.toml templates it, so that a
 * request pays one variable read for them.
 */
export const REQUEST_SETTINGS = Object.freeze({
  variable: "request_settings",
  settings: Object.freeze(["log_requests", "log_level", "require_https", "session_header", "key_value_store"]),
});

/** Where the `default` SQLite database lives (a path, or `:memory:`). */
export const DB_PATH_ENV = "SESSION_DB_PATH";

/** The database file when `SESSION_DB_PATH` is unset or empty (relative to the working directory). */
export const DEFAULT_DB_PATH = "data/sessions.db";

/** The database location from the environment, as the native host reads it. */
export function databasePath(env = process.env) {
  const path = env[DB_PATH_ENV];
  return path ? path : DEFAULT_DB_PATH;
}
