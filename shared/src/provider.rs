//! The closed set of providers payhooks receives callbacks from, rendered to text in one place.
//!
//! Each provider's behaviour lives in its module under [`crate::providers`]; this enum only names them.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    Niobi,
    Choice,
    M2Money,
    Lipia,
    Muda,
}

impl Provider {
    /// Every provider: the one list the functions, scripts and tools derive from.
    pub const ALL: [Provider; 5] =
        [Provider::Niobi, Provider::Choice, Provider::M2Money, Provider::Lipia, Provider::Muda];

    /// The provider's name: its function's binary name, event source and id prefix.
    pub const fn name(self) -> &'static str {
        match self {
            Provider::Niobi => "niobi",
            Provider::Choice => "choice",
            Provider::M2Money => "m2money",
            Provider::Lipia => "lipia",
            Provider::Muda => "muda",
        }
    }
}

impl Provider {
    /// The provider's name in the SAM template's resource and output names (`NiobiQueue`, `M2MoneyCallbackUrl`).
    pub const fn template_name(self) -> &'static str {
        match self {
            Provider::Niobi => "Niobi",
            Provider::Choice => "Choice",
            Provider::M2Money => "M2Money",
            Provider::Lipia => "Lipia",
            Provider::Muda => "Muda",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A provider name that is not one of [`Provider::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider `{0}` (expected one of niobi, choice, m2money, lipia, muda)")]
pub struct UnknownProvider(pub String);

impl FromStr for Provider {
    type Err = UnknownProvider;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Provider::ALL.into_iter().find(|p| p.name() == s).ok_or_else(|| UnknownProvider(s.to_owned()))
    }
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
        assert!("stripe".parse::<Provider>().is_err());
    }
}
