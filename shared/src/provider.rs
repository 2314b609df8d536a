//! The closed set of providers payhooks receives callbacks from, rendered to text in one place.
//!
//! Each provider's behaviour lives in its module under [`crate::providers`]; this enum only names them.

use std::fmt;

use strum::{EnumCount, VariantArray};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
    strum::EnumCount,
)]
#[strum(serialize_all = "lowercase", parse_err_fn = unknown_provider, parse_err_ty = UnknownProvider)]
pub enum Provider {
    Niobi,
    Choice,
    M2Money,
    Lipia,
    Muda,
}

impl Provider {
    /// Every provider: the one list the functions, scripts and tools derive from.
    pub const ALL: [Provider; Self::COUNT] = *Self::VARIANTS.first_chunk().expect("one entry per variant");

    /// The provider's name: its function's binary name, event source and id prefix.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

impl Provider {
    /// The provider's name in the SAM template's resource and output names (`NiobiQueue`, `M2MoneyCallbackUrl`).
    pub fn template_name(self) -> String {
        format!("{self:?}")
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A provider name that is not one of [`Provider::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider `{0}` (expected one of {expected})", expected = Provider::ALL.map(Provider::name).join(", "))]
pub struct UnknownProvider(pub String);

fn unknown_provider(name: &str) -> UnknownProvider {
    UnknownProvider(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Provider::ALL {
            assert_eq!(p.name().parse::<Provider>(), Ok(p));
            assert_eq!(p.to_string(), p.name());
        }
        assert_eq!(
            "stripe".parse::<Provider>().unwrap_err().to_string(),
            "unknown provider `stripe` (expected one of niobi, choice, m2money, lipia, muda)"
        );
        assert_eq!(Provider::M2Money.template_name(), "M2Money");
    }
}
