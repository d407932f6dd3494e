//! Tokens: `<id>.<secret>`, where the id is a public UUID v4 and the secret 32 CSPRNG bytes in
//! unpadded base64url. Only SHA-256 of the secret is stored, so a leaked database yields no
//! usable token; comparison is constant-time so timing reveals nothing about the stored hash.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Bytes of randomness in a secret.
const SECRET_BYTES: usize = 32;
/// Length of the base64url text of a secret (32 bytes, no padding).
const SECRET_CHARS: usize = 43;
/// Length of a hyphenated UUID.
const ID_CHARS: usize = 36;

/// A token as handed to the client. Its `Debug` never shows the secret.
pub struct Token {
    pub id: String,
    secret: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({}.<redacted>)", self.id)
    }
}

/// Why a string is not a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed session token")]
pub struct MalformedToken;

/// The randomness source failed; nothing safe can be issued.
#[derive(Debug, thiserror::Error)]
#[error("random number generator failed: {0}")]
pub struct RandomError(String);

impl Token {
    /// Issues a fresh token for a new session (new id and new secret).
    ///
    /// # Errors
    ///
    /// [`RandomError`] if the OS randomness source fails.
    pub fn generate() -> Result<Self, RandomError> {
        Self::with_id(new_id()?)
    }

    /// Issues a new secret for an existing session id (rotation keeps the public id).
    ///
    /// # Errors
    ///
    /// [`RandomError`] if the OS randomness source fails.
    pub fn with_id(id: String) -> Result<Self, RandomError> {
        let mut secret = [0u8; SECRET_BYTES];
        getrandom::fill(&mut secret).map_err(|e| RandomError(e.to_string()))?;
        Ok(Self {
            id,
            secret: URL_SAFE_NO_PAD.encode(secret),
        })
    }

    /// Parses `<id>.<secret>`, checking the exact shape of both halves.
    ///
    /// # Errors
    ///
    /// [`MalformedToken`] for anything that could not have been issued by [`Token::generate`].
    pub fn parse(text: &str) -> Result<Self, MalformedToken> {
        let (id, secret) = text.split_once('.').ok_or(MalformedToken)?;
        if !is_session_id(id) || secret.len() != SECRET_CHARS {
            return Err(MalformedToken);
        }
        let decoded = URL_SAFE_NO_PAD.decode(secret).map_err(|_| MalformedToken)?;
        if decoded.len() != SECRET_BYTES {
            return Err(MalformedToken);
        }
        Ok(Self {
            id: id.to_owned(),
            secret: secret.to_owned(),
        })
    }

    /// The text handed to the client. Only `create` and `rotate` may call this.
    pub fn expose(&self) -> String {
        format!("{}.{}", self.id, self.secret)
    }

    /// SHA-256 of the secret: the only form stored.
    pub fn secret_hash(&self) -> Vec<u8> {
        Sha256::digest(self.secret.as_bytes()).to_vec()
    }

    /// Whether this token's secret hashes to `stored`, compared in constant time.
    pub fn matches(&self, stored: &[u8]) -> bool {
        self.secret_hash().ct_eq(stored).into()
    }
}

/// Whether `text` could be a credential of ours: a token (a public id, a `.`, anything), or a
/// bare secret (as many base64url characters as a secret has). Log lines show such text only
/// as a fingerprint, wherever it appears (a token pasted into a user id, say).
pub fn looks_like_credential(text: &str) -> bool {
    let token = text
        .split_once('.')
        .is_some_and(|(id, _)| is_session_id(id.trim()));
    let secret = text.len() == SECRET_CHARS
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    token || secret
}

/// Whether `text` has the shape of a public session id: a lowercase hyphenated UUID.
pub fn is_session_id(text: &str) -> bool {
    text.len() == ID_CHARS
        && text.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

fn new_id() -> Result<String, RandomError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| RandomError(e.to_string()))?;
    // RFC 9562 version 4 (random) and variant 10xx.
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_token_round_trips_through_parse() {
        let token = Token::generate().unwrap();
        let text = token.expose();
        let parsed = Token::parse(&text).unwrap();
        assert_eq!(parsed.id, token.id);
        assert!(parsed.matches(&token.secret_hash()));
        assert_eq!(text.len(), ID_CHARS + 1 + SECRET_CHARS);
    }

    #[test]
    fn ids_are_version_4_uuids() {
        let id = Token::generate().unwrap().id;
        assert!(is_session_id(&id), "{id}");
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
    }

    #[test]
    fn two_tokens_differ() {
        let (a, b) = (Token::generate().unwrap(), Token::generate().unwrap());
        assert_ne!(a.id, b.id);
        assert_ne!(a.secret_hash(), b.secret_hash());
    }

    #[test]
    fn a_changed_secret_does_not_match() {
        let token = Token::generate().unwrap();
        let text = token.expose();
        // Change the secret's first character: every character but the last carries six
        // whole bits, so the result is still well-formed.
        let (id, secret) = text.split_once('.').unwrap();
        let first = if secret.starts_with('A') { 'B' } else { 'A' };
        let tampered = Token::parse(&format!("{id}.{first}{}", &secret[1..])).unwrap();
        assert!(!tampered.matches(&token.secret_hash()));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let good = Token::generate().unwrap().expose();
        let (id, secret) = good.split_once('.').unwrap();
        let cases = [
            String::new(),
            ".".to_owned(),
            id.to_owned(),
            format!("{id}."),
            format!(".{secret}"),
            format!("{id}.{secret}x"),
            format!("{id}.{}", &secret[1..]),
            format!("{}.{secret}", id.to_uppercase()),
            format!("{id}.{}", secret.replace(|_: char| true, "+")),
            format!("{id}.{secret}.{secret}"),
            "x".repeat(10_000),
        ];
        for case in cases {
            assert_eq!(Token::parse(&case).unwrap_err(), MalformedToken, "{case:?}");
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let token = Token::generate().unwrap();
        let shown = format!("{token:?}");
        let secret = token.expose().split_once('.').unwrap().1.to_owned();
        assert!(!shown.contains(&secret));
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parse_never_panics_and_accepts_only_canonical_text(text in ".{0,120}") {
            if let Ok(token) = Token::parse(&text) {
                prop_assert_eq!(token.expose(), text);
            }
        }

        #[test]
        fn near_misses_of_a_real_token_are_refused_or_canonical(
            cut in 0usize..80,
            insert in proptest::char::any(),
        ) {
            let text = Token::generate().unwrap().expose();
            let cut = cut.min(text.len());
            let mut mutated = text.clone();
            if mutated.is_char_boundary(cut) {
                mutated.insert(cut, insert);
            }
            prop_assert!(Token::parse(&mutated).is_err() || mutated == text);
        }

        #[test]
        fn session_ids_are_exactly_lowercase_uuids(text in "[0-9a-f-]{36}") {
            let dashes_right = [8, 13, 18, 23].iter().all(|&i| text.as_bytes()[i] == b'-')
                && text.bytes().filter(|&b| b == b'-').count() == 4;
            prop_assert_eq!(is_session_id(&text), dashes_right);
        }
    }
}
