//! The gate's settings: the four of zoe-session's variables that concern middleware, read
//! through zoe-session's own configuration crate, so that one set of Spin variables (or
//! `SESSION_*` environment variables under the native host) configures both with the same
//! names, defaults and rules, and a bad value is the same error in both.

use zoe_session_config::{Config, ConfigError};

/// The gate's validated settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateConfig {
    /// Header that carries the token (`session_header`, default `X-Session-ID`).
    pub session_header: String,
    /// Paths that need a session (`protected_paths`).
    pub protected_paths: Vec<String>,
    /// Paths that never need one, even below a protected path (`excluded_paths`).
    pub excluded_paths: Vec<String>,
    /// Whether a request counts as activity (`auto_update`). The gate's `validate` call
    /// already slides the session when this is on, so the gate only reports it.
    pub auto_update: bool,
}

impl Default for GateConfig {
    fn default() -> Self {
        Self::read(&Config::default()).expect("zoe-session's defaults are valid")
    }
}

impl GateConfig {
    /// Reads the settings through `lookup`; missing or blank values take the defaults.
    ///
    /// # Errors
    ///
    /// The [`ConfigError`] naming the variable and the rule, when a value is present but
    /// unusable.
    pub fn from_lookup(
        lookup: impl Fn(&'static str) -> Option<String> + Send + Sync + 'static,
    ) -> Result<Self, ConfigError> {
        Self::read(&Config::from_lookup(lookup))
    }

    fn read(config: &Config) -> Result<Self, ConfigError> {
        Ok(Self {
            session_header: config.session_header()?.clone(),
            protected_paths: config.protected_paths()?.clone(),
            excluded_paths: config.excluded_paths()?.clone(),
            auto_update: *config.auto_update()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_variables_give_zoe_sessions_defaults() {
        let config = GateConfig::from_lookup(|_| None).expect("defaults are valid");
        assert_eq!(config, GateConfig::default());
        assert_eq!(
            config.protected_paths,
            ["/api/chat", "/developer", "/tasks"]
        );
        assert_eq!(
            config.excluded_paths,
            ["/docs", "/health", "/sessions/create"]
        );
    }

    #[test]
    fn variables_override_the_defaults() {
        let config = GateConfig::from_lookup(|name| {
            Some(
                match name {
                    "session_header" => "X-Token",
                    "protected_paths" => "/api, /admin",
                    "excluded_paths" => "/api/public",
                    "auto_update" => "off",
                    _ => return None,
                }
                .to_owned(),
            )
        })
        .expect("valid");
        assert_eq!(config.session_header, "X-Token");
        assert_eq!(config.protected_paths, ["/api", "/admin"]);
        assert_eq!(config.excluded_paths, ["/api/public"]);
        assert!(!config.auto_update);
    }

    #[test]
    fn bad_values_name_the_setting() {
        for (name, value) in [
            ("session_header", "X Session"),
            ("protected_paths", "api"),
            ("excluded_paths", "/ok,bad"),
            ("auto_update", "sometimes"),
        ] {
            let err = GateConfig::from_lookup(move |n| (n == name).then(|| value.to_owned()))
                .expect_err(name);
            assert_eq!(err.name, name);
            assert!(err.to_string().contains(name), "{err}");
        }
    }
}
