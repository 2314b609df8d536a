//! Secrets that never reach a log, and comparisons that take the same time whatever they compare.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::EmptySecretSet;

/// One secret value. `Debug` prints `[redacted]`; `expose` is the only way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    value: String,
    /// SHA-256 of the value, computed once: what a URL token is compared with.
    digest: [u8; 32],
}

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        let digest = Sha256::digest(value.as_bytes()).into();
        Self { value, digest }
    }

    pub fn expose(&self) -> &str {
        &self.value
    }

    /// Whether `provided` is this secret, in time that depends on neither's content nor length (the two
    /// are compared through their SHA-256).
    pub fn matches_token(&self, provided: &str) -> bool {
        let provided: [u8; 32] = Sha256::digest(provided.as_bytes()).into();
        bool::from(self.digest.ct_eq(&provided))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// The secrets one function accepts: the first is current, the rest are still accepted during rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretSet(Vec<Secret>);

impl SecretSet {
    /// Parse a comma-separated list (`current,previous,...`); blanks are dropped, at least one must remain.
    pub fn parse(list: &str, source: &'static str) -> Result<Self, EmptySecretSet> {
        let secrets: Vec<Secret> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(Secret::new).collect();
        if secrets.is_empty() {
            return Err(EmptySecretSet(source));
        }
        Ok(Self(secrets))
    }

    pub fn current(&self) -> &Secret {
        &self.0[0]
    }

    /// Each secret with its index (0 = current).
    pub fn indexed(&self) -> impl Iterator<Item = (usize, &Secret)> {
        self.0.iter().enumerate()
    }

    /// The index of the first secret for which `matches` holds. Every secret is tried, so the time taken
    /// does not tell which one matched.
    pub fn find(&self, mut matches: impl FnMut(&Secret) -> bool) -> Option<usize> {
        let mut found = None;
        for (i, secret) in self.indexed() {
            if matches(secret) && found.is_none() {
                found = Some(i);
            }
        }
        found
    }
}

/// Whether hex text `provided` (upper- or lower-case) encodes exactly `expected`, in constant time.
pub fn hex_matches(expected: &[u8], provided: &str) -> bool {
    let provided = provided.trim();
    let mut bytes = [0u8; 64];
    let Some(decoded) = bytes.get_mut(..provided.len() / 2) else { return false };
    hex::decode_to_slice(provided, decoded).is_ok() && bool::from(decoded.ct_eq(expected))
}

/// The secrets a function verifies with, as loaded from their source (read again every `SECRETS_REFRESH_SECS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secrets {
    /// The provider's signing secrets or URL tokens: the first is current, the rest still accepted.
    pub webhook: SecretSet,
    /// MUDA only: the `X-Muda-Signature` HMAC keys; when set, every callback must carry that signature.
    pub signing_keys: Option<SecretSet>,
}

impl From<SecretSet> for Secrets {
    fn from(webhook: SecretSet) -> Self {
        Self { webhook, signing_keys: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let set = SecretSet::parse("s3cr3t-value, older", "WEBHOOK_SECRETS").unwrap();
        let printed = format!("{set:?}");
        assert!(!printed.contains("s3cr3t"), "{printed}");
        assert!(printed.contains("redacted"));
    }

    #[test]
    fn parse_keeps_order_and_rejects_empty() {
        let set = SecretSet::parse(" a ,, b ", "X").unwrap();
        let values: Vec<_> = set.indexed().map(|(i, s)| (i, s.expose().to_owned())).collect();
        assert_eq!(values, [(0, "a".to_owned()), (1, "b".to_owned())]);
        assert_eq!(SecretSet::parse(" , ", "X"), Err(EmptySecretSet("X")));
    }

    #[test]
    fn hex_matching_is_case_insensitive_and_exact() {
        let bytes = [0xab, 0xcd];
        assert!(hex_matches(&bytes, "abcd"));
        assert!(hex_matches(&bytes, "ABCD"));
        assert!(!hex_matches(&bytes, "abce"));
        assert!(!hex_matches(&bytes, "abcdab"));
        assert!(!hex_matches(&bytes, "zz"));
        assert!(!hex_matches(&bytes, "abc") && !hex_matches(&bytes, &"ab".repeat(65)));
    }

    #[test]
    fn find_reports_the_matching_index() {
        let set = SecretSet::parse("new,old", "X").unwrap();
        assert_eq!(set.find(|s| s.expose() == "old"), Some(1));
        assert_eq!(set.find(|s| s.expose() == "gone"), None);
        assert!(Secret::new("tok").matches_token("tok"));
        assert!(!Secret::new("tok").matches_token("tok2") && !Secret::new("tok").matches_token(""));
    }
}
