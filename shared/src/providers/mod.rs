//! The providers: each is one module whose [`Spec`] holds its whole behaviour (how it authenticates,
//! parses and normalises, how it acknowledges, its route, and behind `signing` its signer).
//!
//! [`authenticate_and_normalise`] is the whole synchronous half of handling a callback: method, size and
//! source checks, then the provider's own step. Nothing here does I/O. This file is the one place that
//! dispatches on [`Provider`].

mod callback;
mod choice;
mod contract;
pub(crate) mod fields;
mod lipia;
mod m2money;
mod muda;
mod niobi;
#[cfg(feature = "signing")]
pub mod signing;

#[cfg(feature = "test-util")]
pub(crate) use callback::VOLATILE_FIELDS;
pub use callback::{authenticate_and_normalise, canonical_strings, payload_of, stored_callback};
#[cfg(feature = "test-util")]
pub(crate) use contract::Signer;
pub(crate) use contract::Spec;
pub use contract::{
    Ack, Callback, Incoming, Quarantined, Route, Setting, VerifyConfig, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_EVENT_AGE_SECS, MAX_FUTURE_SKEW,
};
pub use fields::{Reason, Unusable};

use crate::provider::Provider;

/// The one dispatch on [`Provider`].
pub(crate) fn spec(provider: Provider) -> &'static Spec {
    match provider {
        Provider::Niobi => &niobi::SPEC,
        Provider::Choice => &choice::SPEC,
        Provider::M2Money => &m2money::SPEC,
        Provider::Lipia => &lipia::SPEC,
        Provider::Muda => &muda::SPEC,
    }
}

/// The provider's acknowledgement.
pub fn ack(provider: Provider) -> Ack {
    spec(provider).ack
}

/// What registering the callback URL with the provider takes besides the URL (`payhooks-admin urls`).
pub fn registration(provider: Provider) -> &'static str {
    spec(provider).registration
}

/// The provider's route shape.
pub fn route(provider: Provider) -> Route {
    spec(provider).route
}

/// The settings of its own the provider reads from the environment.
pub fn settings(provider: Provider) -> &'static [Setting] {
    spec(provider).settings
}

/// The variable the provider's canonical-string hash is read from, if it has that setting.
pub fn canonical_hash_variable(provider: Provider) -> Option<&'static str> {
    settings(provider).iter().find_map(|setting| match setting {
        Setting::CanonicalHash { variable, .. } => Some(*variable),
        _ => None,
    })
}

/// Whether the provider signs the canonical string (it reads `CANONICAL_DIALECTS`).
pub fn signs_canonical_string(provider: Provider) -> bool {
    settings(provider).contains(&Setting::CanonicalDialects)
}

/// The template parameter naming the SSM parameter of the provider's signing keys, if it has them.
pub fn signing_keys_parameter(provider: Provider) -> Option<&'static str> {
    settings(provider).iter().find_map(|setting| match setting {
        Setting::SigningKeys { parameter, .. } => Some(*parameter),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_acks() {
        assert_eq!(route(Provider::Lipia).pattern(Provider::Lipia), "/webhooks/lipia/{token}");
        assert_eq!(route(Provider::Niobi).path(Provider::Niobi, Some("t")), "/webhooks/niobi");
        assert_eq!(ack(Provider::Choice).parts().1, "ok");
    }

    #[test]
    fn settings_answer_what_the_tools_ask() {
        let hashes: Vec<_> = Provider::ALL.map(canonical_hash_variable).into();
        assert_eq!(hashes, [Some("NIOBI_SIGNATURE_HASH"), None, None, None, None]);
        let canonical: Vec<_> = Provider::ALL.map(signs_canonical_string).into();
        assert_eq!(canonical, [true, true, false, false, false]);
        let keys: Vec<_> = Provider::ALL.map(signing_keys_parameter).into();
        assert_eq!(keys, [None, None, None, None, Some("MudaSigningKeysParameter")]);
    }
}
