//! Where Spin releases differ in a way a guest can see, which one this host answers as.

/// Which Spin's `spin:postgres` this host answers as, where Spin releases differ in a way a
/// guest can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpinCompat {
    /// Spin before 4.0 and from 4.1 on: a `query` that matches no rows answers an empty row
    /// set (the default).
    #[default]
    Current,
    /// Spin 4.0.x: the synchronous `query` never returns when its statement matches no rows
    /// (spinframework/spin#3671, a regression of 4.0.0 fixed in 4.1 by #3673; `execute` is
    /// not affected). The guest waits forever there, so this host traps instead of answering,
    /// and the trap names the issue: a test in this mode fails at once where Spin 4.0.x
    /// would hang. For tests (`serve --spin-compat 4.0`).
    V4_0,
}

/// A [`SpinCompat`] value that is neither `4.0` nor `current`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("spin compatibility must be `4.0` or `current`, not {0:?}")]
pub struct SpinCompatError(String);

impl std::str::FromStr for SpinCompat {
    type Err = SpinCompatError;

    /// `4.0` (also `4.0.x` or a `4.0.N` release) or `current`, in any case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let value = text.trim().to_ascii_lowercase();
        let release = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
        match value.as_str() {
            "current" => Ok(Self::Current),
            "4.0" | "4.0.x" => Ok(Self::V4_0),
            _ if value.strip_prefix("4.0.").is_some_and(release) => Ok(Self::V4_0),
            _ => Err(SpinCompatError(text.to_owned())),
        }
    }
}

impl SpinCompat {
    /// Whether a `query` that matched `rows` rows may be answered as this Spin answers it:
    /// Spin 4.0.x gives no answer to an empty result, which here is a trap naming the issue
    /// (a hang would stall the caller instead).
    pub(super) fn check_query(self, statement: &str, rows: usize) -> wasmtime::Result<()> {
        if self == Self::V4_0 && rows == 0 {
            const SHOWN: usize = 200;
            let shown: String = statement.chars().take(SHOWN).collect();
            let more = if shown.len() < statement.len() {
                "…"
            } else {
                ""
            };
            return Err(wasmtime::Error::msg(format!(
                "spin:postgres query matched no rows, which Spin 4.0.x never answers (the \
                 guest would hang: spinframework/spin#3671, fixed in Spin 4.1); this host, in \
                 Spin 4.0 mode, traps instead. Statement: {shown}{more}"
            )));
        }
        Ok(())
    }
}
