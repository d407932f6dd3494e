//! Following the guest's transaction from its statements, so that a connection goes back to
//! the pool only outside one.

/// Where the guest's statements have left its server connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transaction {
    /// Autocommit: the connection may go back to the pool as it is.
    None,
    /// A transaction may be open (the guest began one and has not ended it).
    Open,
    /// The server closed the connection inside a transaction: statements fail until the
    /// guest ends it, so none of them silently runs outside the transaction it expects.
    Lost,
}

/// What a statement does to the transaction state, from its first keywords. Each guest
/// statement is exactly one SQL statement (the extended protocol allows no more), and only
/// `BEGIN` and `START TRANSACTION` open a transaction block, so this is exact for open; for
/// end it errs on the side of "still open", which only costs a `ROLLBACK` on return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// `BEGIN`, `START TRANSACTION`.
    Begins,
    /// `COMMIT`, `END`, `ROLLBACK`, `ABORT` (not `… AND CHAIN`, `ROLLBACK TO`, `… PREPARED`),
    /// `PREPARE TRANSACTION`.
    Ends,
    /// Anything else: the state is unchanged.
    Neither,
}

/// Classifies a statement's effect on the transaction state (see [`Effect`]).
pub fn classify(statement: &str) -> Effect {
    let words: Vec<String> = strip_comments(statement)
        .split(|c: char| c.is_whitespace() || c == ';')
        .filter(|word| !word.is_empty())
        .take(8)
        .map(str::to_ascii_uppercase)
        .collect();
    let has = |word: &str| words.iter().any(|w| w == word);
    match words.first().map(String::as_str) {
        Some("BEGIN" | "START") => Effect::Begins,
        Some("COMMIT" | "END" | "ROLLBACK" | "ABORT") => {
            let chained = words
                .windows(2)
                .any(|pair| pair[1] == "CHAIN" && pair[0] != "NO");
            if has("TO") || has("PREPARED") || chained {
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
pub(super) fn strip_comments(mut text: &str) -> &str {
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

pub(super) fn statement_is_rollback(statement: &str) -> bool {
    let first = strip_comments(statement)
        .split(|c: char| c.is_whitespace() || c == ';')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    first == "ROLLBACK" || first == "ABORT"
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
        for neither in [
            "SELECT 1",
            "INSERT INTO t VALUES ($1)",
            "ROLLBACK TO SAVEPOINT a",
            "COMMIT AND CHAIN",
            "COMMIT PREPARED 'x'",
            "SAVEPOINT a",
            "DO $$ BEGIN PERFORM 1; END $$",
            "",
            "-- only a comment",
        ] {
            assert_eq!(classify(neither), Effect::Neither, "{neither:?}");
        }
    }
}
