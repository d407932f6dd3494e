//! Transaction control in a guest's SQL, recognised once for both database interfaces: the
//! `spin:sqlite` host routes such statements to the writer connection, and the
//! `spin:postgres` host follows the transaction they open so that a connection goes back to
//! the pool only outside one.

/// What a statement does to the transaction state, from its first keywords. Each guest
/// statement is exactly one SQL statement (neither `spin:sqlite` nor the extended protocol of
/// PostgreSQL runs more), and only `BEGIN` and `START TRANSACTION` open a transaction block,
/// so this is exact for open; for end it errs on the side of "still open", which only costs a
/// `ROLLBACK` on return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// `BEGIN`, `START TRANSACTION`.
    Begins,
    /// `COMMIT`, `END`, `ROLLBACK`, `ABORT` (not `… AND CHAIN`, `ROLLBACK TO`, `… PREPARED`),
    /// `PREPARE TRANSACTION`.
    Ends,
    /// `SAVEPOINT`, `RELEASE`, `ROLLBACK TO`: inside a transaction on PostgreSQL; on SQLite a
    /// `SAVEPOINT` outside one begins one and the outermost `RELEASE` ends it.
    Savepoint,
    /// Anything else: the state is unchanged.
    Neither,
}

/// Classifies a statement's effect on the transaction state (see [`Effect`]).
pub fn classify(statement: &str) -> Effect {
    let words = keywords(statement);
    let has = |word: &str| words.iter().any(|w| w == word);
    match words.first().map(String::as_str) {
        Some("BEGIN" | "START") => Effect::Begins,
        Some("SAVEPOINT" | "RELEASE") => Effect::Savepoint,
        Some("ROLLBACK") if has("TO") => Effect::Savepoint,
        Some("COMMIT" | "END" | "ROLLBACK" | "ABORT") => {
            let chained = words
                .windows(2)
                .any(|pair| pair[1] == "CHAIN" && pair[0] != "NO");
            if has("PREPARED") || chained {
                Effect::Neither
            } else {
                Effect::Ends
            }
        }
        Some("PREPARE") if words.get(1).is_some_and(|w| w == "TRANSACTION") => Effect::Ends,
        _ => Effect::Neither,
    }
}

/// The statement with leading `--` and `/* */` comments removed (only leading ones matter for
/// the first keyword).
fn strip_comments(mut text: &str) -> &str {
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix("--") {
            text = rest.split_once('\n').map_or("", |(_, rest)| rest);
        } else if let Some(rest) = text.strip_prefix("/*") {
            text = rest.split_once("*/").map_or("", |(_, rest)| rest);
        } else {
            return text;
        }
    }
}

/// Whether the statement is a `ROLLBACK` or `ABORT` of any kind.
pub fn statement_is_rollback(statement: &str) -> bool {
    keywords(statement)
        .first()
        .is_some_and(|first| first == "ROLLBACK" || first == "ABORT")
}

/// The statement's first keywords, upper-cased, after any leading comments: enough to tell
/// every transaction-control form apart.
fn keywords(statement: &str) -> Vec<String> {
    strip_comments(statement)
        .split(|c: char| c.is_whitespace() || c == ';')
        .filter(|word| !word.is_empty())
        .take(8)
        .map(str::to_ascii_uppercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_statements_are_classified_from_their_first_keywords() {
        for begins in [
            "BEGIN",
            "begin;",
            "  BEGIN ISOLATION LEVEL SERIALIZABLE",
            "START TRANSACTION",
            "-- take the lock\nBEGIN",
            "/* c */ begin",
        ] {
            assert_eq!(classify(begins), Effect::Begins, "{begins:?}");
        }
        for ends in [
            "COMMIT",
            "commit;",
            "END",
            "ROLLBACK",
            "ABORT",
            "COMMIT WORK",
            "ROLLBACK AND NO CHAIN",
            "PREPARE TRANSACTION 'x'",
        ] {
            assert_eq!(classify(ends), Effect::Ends, "{ends:?}");
        }
        for savepoint in [
            "SAVEPOINT a",
            "release a",
            "RELEASE SAVEPOINT a",
            "ROLLBACK TO SAVEPOINT a",
            "rollback to a",
        ] {
            assert_eq!(classify(savepoint), Effect::Savepoint, "{savepoint:?}");
        }
        for neither in [
            "SELECT 1",
            "INSERT INTO t VALUES ($1)",
            "COMMIT AND CHAIN",
            "COMMIT PREPARED 'x'",
            "DO $$ BEGIN PERFORM 1; END $$",
            "",
            "-- only a comment",
        ] {
            assert_eq!(classify(neither), Effect::Neither, "{neither:?}");
        }
    }
}
