//! The gate's settings: the four of zoe-session's variables that concern middleware, with the
//! same names, defaults and rules as the component's `src/config.rs`, so one set of Spin
//! variables (or `SESSION_*` environment variables under the native host) configures both.

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
        Self {
            session_header: "X-Session-ID".to_owned(),
            protected_paths: split("/api/chat,/developer,/tasks"),
            excluded_paths: split("/docs,/health,/sessions/create"),
            auto_update: true,
        }
    }
}

impl GateConfig {
    /// Reads the settings through `lookup`; missing or blank values take the defaults.
    ///
    /// # Errors
    ///
    /// A sentence naming the variable and the rule, when a value is present but unusable.
    pub fn from_lookup(mut lookup: impl FnMut(&str) -> Option<String>) -> Result<Self, String> {
        let defaults = Self::default();
        let mut get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        Ok(Self {
            session_header: match get("session_header") {
                None => defaults.session_header,
                Some(v) => header_name(v.trim())?,
            },
            protected_paths: match get("protected_paths") {
                None => defaults.protected_paths,
                Some(v) => paths("protected_paths", &v)?,
            },
            excluded_paths: match get("excluded_paths") {
                None => defaults.excluded_paths,
                Some(v) => paths("excluded_paths", &v)?,
            },
            auto_update: match get("auto_update") {
                None => defaults.auto_update,
                Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" | "on" => true,
                    "false" | "0" | "no" | "off" => false,
                    _ => {
                        return Err(format!(
                            "invalid setting `auto_update`: must be true or false, got {v:?}"
                        ));
                    }
                },
            },
        })
    }
}

fn header_name(value: &str) -> Result<String, String> {
    let valid = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(value.to_owned())
    } else {
        Err("invalid setting `session_header`: must be 1-64 letters, digits, `-` or `_`".to_owned())
    }
}

fn split(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

fn paths(name: &str, list: &str) -> Result<Vec<String>, String> {
    let paths = split(list);
    match paths.iter().find(|p| !p.starts_with('/')) {
        Some(bad) => Err(format!(
            "invalid setting `{name}`: must be a comma-separated list of paths starting with `/`, got {bad:?}"
        )),
        None => Ok(paths),
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
            let err =
                GateConfig::from_lookup(|n| (n == name).then(|| value.to_owned())).expect_err(name);
            assert!(err.contains(name), "{err}");
        }
    }
}
