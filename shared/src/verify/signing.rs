//! The signature primitives the providers use, to verify callbacks and (behind `signing`, for the tests
//! and `payhooks-send`) to sign them the same way the providers do.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use strum::{EnumCount, VariantArray};

use super::canonical::CanonicalPairs;
use super::secrets::Secret;
#[cfg(any(test, feature = "signing"))]
use super::{canonical::SIGNATURE_FIELD, json};

/// How Niobi (and Choice, always `Sha256`) turn the canonical string into a signature.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString, strum::VariantArray, strum::EnumCount,
)]
#[strum(serialize_all = "kebab-case", ascii_case_insensitive)]
pub enum CanonicalHash {
    /// Plain SHA-256 over the canonical string, which contains `senderKey=<secret>` (Choice's documented scheme).
    Sha256,
    /// HMAC-SHA256 keyed with the secret over the same canonical string (Niobi's alternative reading).
    HmacSha256,
}

impl CanonicalHash {
    pub const ALL: [CanonicalHash; Self::COUNT] = *Self::VARIANTS.first_chunk().expect("one entry per variant");

    /// The name `NIOBI_SIGNATURE_HASH` takes.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(value: &str) -> Option<Self> {
        value.trim().parse().ok()
    }
}

/// The signature of a canonical string. The string is written into one buffer and hashed in one pass: a
/// pass per `&`-joined part would cost the hasher's bookkeeping sixty times a callback.
pub fn canonical_digest(pairs: &CanonicalPairs, secret: &Secret, hash: CanonicalHash) -> [u8; 32] {
    let signed = pairs.string_to_sign(secret.expose());
    match hash {
        CanonicalHash::Sha256 => Sha256::digest(signed.as_bytes()).into(),
        CanonicalHash::HmacSha256 => hmac_sha256(secret.expose().as_bytes(), &[signed.as_bytes()]),
    }
}

/// HMAC-SHA256 of the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

#[cfg(any(test, feature = "signing"))]
/// Sign a JSON object body the way Choice / Niobi do: set its `signature` field (replacing any) to the
/// lowercase hex signature of the rest. The other members keep their text and order.
pub fn sign_canonical_body(
    body: &str,
    secret: &Secret,
    hash: CanonicalHash,
    dialect: super::Dialect,
) -> Result<String, json::ReadError> {
    let doc = json::read_signed(body)?;
    let pairs = CanonicalPairs::in_dialect(&doc, dialect).ok_or(json::ReadError::TooComplex)?;
    let signature = hex::encode(canonical_digest(&pairs, secret, hash));
    let unsigned = doc.object_without(&[SIGNATURE_FIELD]);
    let text = unsigned.trim();
    let sep = if doc.members().any(|(key, _)| key != SIGNATURE_FIELD) { "," } else { "" };
    Ok(format!("{}{sep}\"{SIGNATURE_FIELD}\":\"{signature}\"}}", &text[..text.len() - 1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest_hex(body: &str, key: &str) -> String {
        let pairs = CanonicalPairs::of(&json::read(body).unwrap());
        hex::encode(canonical_digest(&pairs, &Secret::new(key), CanonicalHash::Sha256))
    }

    /// Derived vector 1 in providers.md (Choice authentication page's example string).
    #[test]
    fn choice_doc_example_vector() {
        let body = r#"{"locale":"en_KE","params":{"name":"Tester"},"requestId":"APPREQ00990320fed02000","salt":"QcEwsZ123da","sender":"client1","timestamp":1650533105687}"#;
        assert_eq!(digest_hex(body, "yourkey"), "ce4f419f667b7d5621892337c23905b894472e6b186f06a0e237528b011ab2f2");
    }

    /// Derived vector 2 in providers.md (a 0002 transaction notification).
    #[test]
    fn choice_transaction_vector() {
        let body = r#"{"requestId":"R1","sender":"choice.baas","locale":"en_KE","timestamp":1650533105687,"notificationType":"0002","params":{"txId":"T1","txStatus":8,"amount":"100.00"},"salt":"abc","signature":"ignored"}"#;
        assert_eq!(digest_hex(body, "yourkey"), "28a7f728af30c070fe48ef25de1b9b71ce95397a65298b7459973f3f568d2b38");
    }

    /// Derived M2Money vector in providers.md: HMAC-SHA256 over the raw body.
    #[test]
    fn m2money_vector() {
        let body = r#"{"event":"payout.transfer.success","code":"0x0200","message":"Transaction Successful","data":{"orderRefId":"REF1","clientRefId":"C1","amount":"100","status":"processed","utr":"5196261"}}"#;
        assert_eq!(
            hex::encode(hmac_sha256(b"test_secret", &[body.as_bytes()])),
            "428bbbe9f2eae73492370a79c13f7f1ee20d5b51bbfa61e30eb49ca7568bd216"
        );
    }

    #[test]
    fn signing_a_body_sets_the_signature_it_verifies_with() {
        let signed = sign_canonical_body(
            r#"{"a":1.50,"signature":"old","b":"x"}"#,
            &Secret::new("k"),
            CanonicalHash::Sha256,
            super::super::Dialect::Postman,
        )
        .unwrap();
        let sig = json::read(&signed).unwrap().member_text("signature").unwrap().to_owned();
        assert_eq!(sig, digest_hex(&signed, "k"));
        assert!(signed.starts_with(r#"{"a":1.50,"b":"x","signature":""#), "{signed}");
    }

    #[test]
    fn hash_names_parse() {
        assert_eq!(CanonicalHash::parse("HMAC-SHA256"), Some(CanonicalHash::HmacSha256));
        assert_eq!(CanonicalHash::parse("sha256"), Some(CanonicalHash::Sha256));
        assert_eq!(CanonicalHash::parse("md5"), None);
    }
}
