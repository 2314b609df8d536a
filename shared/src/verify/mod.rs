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

/// How a callback was authenticated: the closed set of schemes, rendered once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// A secret token as the callback URL's last path segment (Lipia, MUDA).
    UrlToken,
    /// MUDA's URL token plus its `X-Muda-Signature` HMAC over body and timestamp.
    UrlTokenMudaHmac,
    /// Niobi's canonical string, SHA-256 with `senderKey`.
    NiobiSha256,
    /// Niobi's canonical string, HMAC-SHA256 keyed with the secret.
    NiobiHmacSha256,
    /// Choice's canonical string, SHA-256 with `senderKey`.
    ChoiceSha256,
    /// M2Money's `Signature` header: HMAC-SHA256 over the raw body.
    M2MoneyHmacSha256,
}

impl Scheme {
    const ALL: [Scheme; 6] = [
        Scheme::UrlToken,
        Scheme::UrlTokenMudaHmac,
        Scheme::NiobiSha256,
        Scheme::NiobiHmacSha256,
        Scheme::ChoiceSha256,
        Scheme::M2MoneyHmacSha256,
    ];

    /// The scheme a stored record names.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scheme| scheme.as_str() == s)
    }

    /// Whether the signature covers the canonical string (not the bytes): then one signed body has other
    /// spellings, so each signature is recorded once.
    pub fn signs_canonical_string(self) -> bool {
        matches!(self, Scheme::NiobiSha256 | Scheme::NiobiHmacSha256 | Scheme::ChoiceSha256)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::UrlToken => "url-token",
            Scheme::UrlTokenMudaHmac => "url-token+muda-hmac-sha256",
            Scheme::NiobiSha256 => "niobi-sha256",
            Scheme::NiobiHmacSha256 => "niobi-hmac-sha256",
            Scheme::ChoiceSha256 => "choice-sha256",
            Scheme::M2MoneyHmacSha256 => "m2money-hmac-sha256",
        }
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
