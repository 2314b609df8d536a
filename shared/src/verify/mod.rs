//! Verification internals: raw JSON access, the canonical string, the signature primitives and secrets.
//! Provider modules combine these; nothing here knows about providers.

pub(crate) mod canonical;
pub(crate) mod json;
pub(crate) mod number;
pub(crate) mod secrets;
pub(crate) mod signing;

pub use canonical::Dialect;
pub use secrets::{Secret, SecretSet, Secrets};
pub use signing::CanonicalHash;

/// How a callback was authenticated, by mechanism. The text a record stores (`serialize`) is the label each
/// scheme has carried since the first release, named after the provider that first used it: a label, read
/// back with [`Scheme::parse`], not a provider fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumString, strum::VariantArray)]
pub enum Scheme {
    /// A secret token as the callback URL's last path segment.
    #[strum(serialize = "url-token")]
    UrlToken,
    /// The URL token, plus an HMAC-SHA256 over the body and a timestamp in a header.
    #[strum(serialize = "url-token+muda-hmac-sha256")]
    UrlTokenAndBodyHmac,
    /// The canonical string with the secret as `senderKey`, SHA-256; timestamp in seconds.
    #[strum(serialize = "niobi-sha256")]
    CanonicalSha256,
    /// The canonical string, HMAC-SHA256 keyed with the secret; timestamp in seconds.
    #[strum(serialize = "niobi-hmac-sha256")]
    CanonicalHmacSha256,
    /// The canonical string with the secret as `senderKey`, SHA-256; timestamp in milliseconds.
    #[strum(serialize = "choice-sha256")]
    CanonicalSha256Millis,
    /// HMAC-SHA256 over the raw body, in a header.
    #[strum(serialize = "m2money-hmac-sha256")]
    BodyHmacSha256,
}

impl Scheme {
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    pub fn signs_canonical_string(self) -> bool {
        matches!(self, Scheme::CanonicalSha256 | Scheme::CanonicalHmacSha256 | Scheme::CanonicalSha256Millis)
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a callback was authenticated: the scheme and which secret (index, never value) matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub scheme: Scheme,
    pub secret_index: usize,
    /// Niobi and Choice: the canonical-string dialect that verified.
    pub dialect: Option<Dialect>,
}

/// A text's first 16 bytes as a big-endian number, zero-padded: a sort key that never contradicts byte
/// order (a text that sorts before another never has a larger key). Sorting by `(key, text)` is therefore
/// sorting by text, with whole texts compared only where keys are equal (paths share long prefixes).
pub(crate) fn prefix_key(text: &[u8]) -> u128 {
    match text.first_chunk::<16>() {
        Some(first) => u128::from_be_bytes(*first),
        // Shorter: its bytes, then zeros (built in a register; a copy into a buffer would stall the load).
        None => {
            let bytes = text.iter().fold(0u128, |key, &b| key << 8 | u128::from(b));
            bytes.checked_shl(8 * (16 - text.len() as u32)).unwrap_or(0)
        }
    }
}

/// Lowercase hex of the SHA-256 of `bytes`.
pub(crate) fn hex_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex32(&sha2::Sha256::digest(bytes).into())
}

/// Lowercase hex of a 32-byte digest.
pub(crate) fn hex32(digest: &[u8; 32]) -> String {
    let mut out = [0u8; 64];
    hex::encode_to_slice(digest, &mut out).expect("64 hex digits for 32 bytes");
    String::from_utf8(out.to_vec()).expect("hex digits are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::VariantArray;

    /// Records store these labels: renaming a variant must not change them.
    #[test]
    fn the_stored_scheme_labels_are_unchanged() {
        let labels: Vec<&str> = Scheme::VARIANTS.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            labels,
            [
                "url-token",
                "url-token+muda-hmac-sha256",
                "niobi-sha256",
                "niobi-hmac-sha256",
                "choice-sha256",
                "m2money-hmac-sha256"
            ]
        );
        for scheme in Scheme::VARIANTS {
            assert_eq!(Scheme::parse(scheme.as_str()), Some(*scheme));
        }
        assert_eq!(Scheme::parse("niobi"), None);
    }
}
