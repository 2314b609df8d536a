//! Configuration, read once per cold start from the environment. Every setting is in docs/operations.md (Configuration reference).

use std::time::Duration;

use ipnet::IpNet;

use crate::error::ConfigError;
use crate::provider::Provider;
use crate::providers::{self, Setting};
pub use crate::providers::{VerifyConfig, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_EVENT_AGE_SECS, MAX_FUTURE_SKEW};
use crate::verify::{CanonicalHash, Dialect, SecretSet};

pub const DEFAULT_EVENT_TTL_DAYS: u64 = 35;
pub const DEFAULT_IDEMPOTENCY_TTL_DAYS: u64 = 3650;
pub const DEFAULT_SECRETS_REFRESH_SECS: u64 = 300;
/// The largest body accepted at all: a message carries the body as its payload, and SQS takes 256 KiB.
pub const MAX_BODY_BYTES_LIMIT: usize = 196_608;

/// Where the provider secrets come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `WEBHOOK_SECRETS`: the values themselves (local runs and tests).
    Inline(SecretSet),
    /// `WEBHOOK_SECRETS_PARAM`: the name of an SSM SecureString parameter holding the same list (deployed).
    SsmParameter(String),
}

/// Which root certificates the functions' TLS connections to AWS trust (`TLS_ROOTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, strum::EnumString)]
#[strum(serialize_all = "lowercase")]
pub enum TlsRoots {
    /// The five roots of Amazon Trust Services, built into the binary: every AWS endpoint the functions call
    /// chains to one of them. Nothing is read from disk at init, and no other authority can vouch for an
    /// endpoint.
    #[default]
    Amazon,
    /// The platform's store, as the SDK loads it by default (a partition whose endpoints another authority
    /// certifies, or an egress proxy with its own CA).
    System,
}

impl TlsRoots {
    pub fn parse(s: &str) -> Option<Self> {
        s.trim().parse().ok()
    }

    /// Read `TLS_ROOTS` through `get` (unset: [`TlsRoots::Amazon`]).
    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        get("TLS_ROOTS").map_or(Ok(TlsRoots::Amazon), |v| {
            Self::parse(&v).ok_or_else(|| invalid("TLS_ROOTS", &v, "expected amazon or system"))
        })
    }
}

/// How long records are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Raw bodies, conflict records and signature records (`EVENT_TTL_DAYS`).
    pub body: Duration,
    /// The small per-event markers that make a replay a duplicate (`IDEMPOTENCY_TTL_DAYS`): they outlive
    /// the body, so the same bytes never become new events again.
    pub marker: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            body: Duration::from_secs(DEFAULT_EVENT_TTL_DAYS * 86_400),
            marker: Duration::from_secs(DEFAULT_IDEMPOTENCY_TTL_DAYS * 86_400),
        }
    }
}

/// Everything one function reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub provider: Provider,
    pub verify: VerifyConfig,
    pub secrets: SecretSource,
    /// MUDA only: the `X-Muda-Signature` keys (`MUDA_SIGNING_KEYS_PARAM`, or `MUDA_SIGNING_KEYS` locally).
    pub signing_keys: Option<SecretSource>,
    pub events_table: String,
    pub events_queue_url: String,
    pub retention: Retention,
    /// How long loaded secrets are used before SSM is read again (`SECRETS_REFRESH_SECS`).
    pub secrets_refresh: Duration,
    pub tls_roots: TlsRoots,
}

fn invalid(name: &'static str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { name, value: value.to_owned(), reason: reason.into() }
}

impl Config {
    /// Read the configuration from the process environment.
    pub fn from_env(provider: Provider) -> Result<Self, ConfigError> {
        Self::from_lookup(provider, provider_overrides(provider, |name| std::env::var(name).ok()))
    }

    /// Read the configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(provider: Provider, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let number = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(v) => match v.parse::<u64>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(invalid(name, &v, "expected a positive whole number")),
                },
            }
        };

        let secrets = match (get("WEBHOOK_SECRETS"), get("WEBHOOK_SECRETS_PARAM")) {
            (Some(list), _) => SecretSource::Inline(SecretSet::parse(&list, "WEBHOOK_SECRETS")?),
            (None, Some(param)) => SecretSource::SsmParameter(param),
            (None, None) => return Err(ConfigError::NoSecret),
        };

        let max_body_bytes = number("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES as u64)? as usize;
        if max_body_bytes > MAX_BODY_BYTES_LIMIT {
            return Err(invalid(
                "MAX_BODY_BYTES",
                &max_body_bytes.to_string(),
                format!(
                    "at most {MAX_BODY_BYTES_LIMIT}: the body travels as the message payload, and SQS takes 256 KiB"
                ),
            ));
        }
        let max_event_age_secs = number("MAX_EVENT_AGE_SECS", DEFAULT_MAX_EVENT_AGE_SECS)?;
        let ttl_days = number("EVENT_TTL_DAYS", DEFAULT_EVENT_TTL_DAYS)?;
        let idempotency_days = number("IDEMPOTENCY_TTL_DAYS", DEFAULT_IDEMPOTENCY_TTL_DAYS)?;
        let secrets_refresh_secs = number("SECRETS_REFRESH_SECS", DEFAULT_SECRETS_REFRESH_SECS)?;
        if idempotency_days < ttl_days {
            return Err(invalid(
                "IDEMPOTENCY_TTL_DAYS",
                &idempotency_days.to_string(),
                "must be at least EVENT_TTL_DAYS: the marker that makes a replay a duplicate must outlive the body",
            ));
        }
        if ttl_days * 86_400 <= max_event_age_secs {
            return Err(invalid(
                "EVENT_TTL_DAYS",
                &ttl_days.to_string(),
                "must be longer than MAX_EVENT_AGE_SECS, or an old callback replayed after its record expired would be taken as new",
            ));
        }

        let allowed_source_ips = get("ALLOWED_SOURCE_IPS").map(|v| parse_cidrs(&v)).transpose()?;

        let mut verify = VerifyConfig {
            max_body_bytes,
            max_event_age: Duration::from_secs(max_event_age_secs),
            allowed_source_ips,
            ..VerifyConfig::default()
        };
        let mut signing_keys = None;
        for setting in providers::settings(provider) {
            match *setting {
                Setting::CanonicalHash { variable: name, .. } => {
                    if let Some(v) = get(name) {
                        verify.canonical_hash = CanonicalHash::parse(&v)
                            .ok_or_else(|| invalid(name, &v, "expected sha256 or hmac-sha256"))?;
                    }
                }
                Setting::CanonicalDialects => {
                    if let Some(list) = get("CANONICAL_DIALECTS") {
                        verify.dialects = parse_dialects(&list)?;
                    }
                }
                Setting::SigningKeys { variable: name, .. } => {
                    signing_keys = match (get(name), get(&format!("{name}_PARAM"))) {
                        (Some(list), _) => Some(SecretSource::Inline(SecretSet::parse(&list, name)?)),
                        (None, Some(param)) => Some(SecretSource::SsmParameter(param)),
                        (None, None) => None,
                    };
                }
            }
        }

        Ok(Self {
            provider,
            verify,
            secrets,
            signing_keys,
            events_table: get("EVENTS_TABLE").ok_or(ConfigError::Missing("EVENTS_TABLE".into()))?,
            events_queue_url: get("EVENTS_QUEUE_URL").ok_or(ConfigError::Missing("EVENTS_QUEUE_URL".into()))?,
            retention: Retention {
                body: Duration::from_secs(ttl_days * 86_400),
                marker: Duration::from_secs(idempotency_days * 86_400),
            },
            secrets_refresh: Duration::from_secs(secrets_refresh_secs),
            tls_roots: TlsRoots::from_lookup(get)?,
        })
    }
}

/// What the sweeper reads: the table, and every provider's queue (`<PROVIDER>_EVENTS_QUEUE_URL`).
#[derive(Debug, Clone)]
pub struct SweeperConfig {
    pub events_table: String,
    pub queue_urls: Vec<(Provider, String)>,
    pub tls_roots: TlsRoots,
}

impl SweeperConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let queue_urls = Provider::ALL
            .into_iter()
            .map(|provider| {
                let name = queue_url_variable(provider);
                get(&name).map(|url| (provider, url)).ok_or(ConfigError::Missing(name.into()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            events_table: get("EVENTS_TABLE").ok_or(ConfigError::Missing("EVENTS_TABLE".into()))?,
            queue_urls,
            tls_roots: TlsRoots::from_lookup(get)?,
        })
    }
}

/// The variable holding a provider's queue URL for the sweeper: `<PROVIDER>_EVENTS_QUEUE_URL`.
pub fn queue_url_variable(provider: Provider) -> String {
    format!("{}_EVENTS_QUEUE_URL", provider.name().to_ascii_uppercase())
}

/// A lookup in which `<PROVIDER>_<NAME>` (e.g. `LIPIA_EVENTS_QUEUE_URL`) wins over `<NAME>`, so one
/// environment can serve all five functions (`cargo lambda watch` runs them with one env file).
pub fn provider_overrides(
    provider: Provider,
    lookup: impl Fn(&str) -> Option<String>,
) -> impl Fn(&str) -> Option<String> {
    let prefix = provider.name().to_ascii_uppercase();
    move |name| lookup(&format!("{prefix}_{name}")).filter(|v| !v.trim().is_empty()).or_else(|| lookup(name))
}

/// Parse `CANONICAL_DIALECTS`: comma-separated dialect names, tried in the order given.
fn parse_dialects(list: &str) -> Result<Vec<Dialect>, ConfigError> {
    let names: Vec<&str> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    let expected = "expected dialect names from postman, javascript, jackson, compact, java";
    let dialects = names
        .iter()
        .map(|name| Dialect::parse(name).ok_or_else(|| invalid("CANONICAL_DIALECTS", name, expected)))
        .collect::<Result<Vec<_>, _>>()?;
    if dialects.is_empty() {
        return Err(invalid("CANONICAL_DIALECTS", list, expected));
    }
    Ok(dialects)
}

/// Parse `ALLOWED_SOURCE_IPS`: comma-separated CIDRs; a bare address means that one address.
pub fn parse_cidrs(list: &str) -> Result<Vec<IpNet>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| invalid("ALLOWED_SOURCE_IPS", item, "expected a CIDR such as 203.0.113.0/24"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(Provider::Niobi, |k| map.get(k).cloned())
    }

    const BASE: [(&str, &str); 2] = [("EVENTS_TABLE", "t"), ("EVENTS_QUEUE_URL", "http://q")];

    #[test]
    fn refuses_to_start_without_a_secret() {
        assert_eq!(config(&BASE).unwrap_err(), ConfigError::NoSecret);
        let msg = ConfigError::NoSecret.to_string();
        assert!(msg.contains("WEBHOOK_SECRETS") && msg.contains("WEBHOOK_SECRETS_PARAM"));
    }

    #[test]
    fn defaults_apply() {
        let c = config(&[BASE[0], BASE[1], ("WEBHOOK_SECRETS", "a,b")]).unwrap();
        assert_eq!(c.verify.max_body_bytes, 131_072);
        assert_eq!(c.verify.max_event_age, Duration::from_secs(604_800));
        assert_eq!(c.retention, Retention::default());
        assert_eq!(c.retention.marker, Duration::from_secs(3650 * 86_400));
        assert_eq!(c.verify.canonical_hash, CanonicalHash::Sha256);
        assert!(c.verify.allowed_source_ips.is_none());
        assert_eq!(c.tls_roots, TlsRoots::Amazon);
        assert_eq!(c.secrets_refresh, Duration::from_secs(300));
        let c = config(&[BASE[0], BASE[1], ("WEBHOOK_SECRETS", "a"), ("SECRETS_REFRESH_SECS", "60")]).unwrap();
        assert_eq!(c.secrets_refresh, Duration::from_secs(60));
        assert!(config(&[BASE[0], BASE[1], ("WEBHOOK_SECRETS", "a"), ("SECRETS_REFRESH_SECS", "0")]).is_err());
    }

    #[test]
    fn tls_roots_are_amazon_unless_system_is_asked_for() {
        let with = |value| config(&[BASE[0], BASE[1], ("WEBHOOK_SECRETS", "a"), ("TLS_ROOTS", value)]);
        assert_eq!(with("system").unwrap().tls_roots, TlsRoots::System);
        assert_eq!(with(" amazon ").unwrap().tls_roots, TlsRoots::Amazon);
        let err = with("none").unwrap_err();
        assert!(err.to_string().contains("TLS_ROOTS") && err.to_string().contains("amazon or system"), "{err}");
    }

    #[test]
    fn ssm_parameter_is_a_source() {
        let c = config(&[BASE[0], BASE[1], ("WEBHOOK_SECRETS_PARAM", "/payhooks/niobi")]).unwrap();
        assert_eq!(c.secrets, SecretSource::SsmParameter("/payhooks/niobi".into()));
    }

    #[test]
    fn bad_values_are_named() {
        let err = config(&[BASE[0], BASE[1], ("WEBHOOK_SECRETS", "a"), ("NIOBI_SIGNATURE_HASH", "md5")]).unwrap_err();
        assert!(err.to_string().contains("NIOBI_SIGNATURE_HASH"), "{err}");
        let err = config(&[BASE[0], BASE[1], ("WEBHOOK_SECRETS", "a"), ("ALLOWED_SOURCE_IPS", "10.0.0.0/8, nope")])
            .unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        let err = config(&[BASE[0], BASE[1], ("WEBHOOK_SECRETS", "a"), ("EVENT_TTL_DAYS", "7")]).unwrap_err();
        assert!(err.to_string().contains("EVENT_TTL_DAYS"), "{err}");
        let err = config(&[BASE[0], BASE[1], ("WEBHOOK_SECRETS", "a"), ("IDEMPOTENCY_TTL_DAYS", "30")]).unwrap_err();
        assert!(err.to_string().contains("IDEMPOTENCY_TTL_DAYS"), "{err}");
        let err = config(&[BASE[0], BASE[1], ("WEBHOOK_SECRETS", "a"), ("MAX_BODY_BYTES", "300000")]).unwrap_err();
        assert!(err.to_string().contains("MAX_BODY_BYTES"), "{err}");
        assert_eq!(config(&[("WEBHOOK_SECRETS", "a")]).unwrap_err(), ConfigError::Missing("EVENTS_TABLE".into()));
    }

    #[test]
    fn provider_scoped_names_win() {
        let vars = [
            BASE[0],
            BASE[1],
            ("WEBHOOK_SECRETS", "shared"),
            ("NIOBI_WEBHOOK_SECRETS", "mine"),
            ("LIPIA_EVENTS_TABLE", "x"),
        ];
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let c =
            Config::from_lookup(Provider::Niobi, provider_overrides(Provider::Niobi, |k| map.get(k).cloned())).unwrap();
        assert_eq!(c.secrets, SecretSource::Inline(SecretSet::parse("mine", "X").unwrap()));
        assert_eq!(c.events_table, "t");
    }

    #[test]
    fn muda_signing_keys_come_from_ssm_or_inline() {
        let lookup = |vars: &[(&str, &str)]| {
            let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            Config::from_lookup(Provider::Muda, move |k| map.get(k).cloned()).unwrap().signing_keys
        };
        let base = [BASE[0], BASE[1], ("WEBHOOK_SECRETS", "t")];
        assert_eq!(lookup(&base), None);
        let param = lookup(&[base[0], base[1], base[2], ("MUDA_SIGNING_KEYS_PARAM", "/payhooks/muda-keys")]);
        assert_eq!(param, Some(SecretSource::SsmParameter("/payhooks/muda-keys".into())));
        let inline = lookup(&[base[0], base[1], base[2], ("MUDA_SIGNING_KEYS", "k1")]);
        assert_eq!(inline, Some(SecretSource::Inline(SecretSet::parse("k1", "X").unwrap())));
    }

    #[test]
    fn the_sweeper_needs_every_queue() {
        let names = ["NIOBI", "CHOICE", "M2MONEY", "LIPIA", "MUDA"].map(|p| format!("{p}_EVENTS_QUEUE_URL"));
        let all: HashMap<String, String> = names
            .iter()
            .map(|n| (n.clone(), format!("http://q/{n}")))
            .chain([("EVENTS_TABLE".to_owned(), "t".to_owned())])
            .collect();
        let c = SweeperConfig::from_lookup(|k| all.get(k).cloned()).unwrap();
        assert_eq!(c.queue_urls.len(), 5);
        assert_eq!(c.queue_urls[2], (Provider::M2Money, "http://q/M2MONEY_EVENTS_QUEUE_URL".to_owned()));
        assert_eq!(c.tls_roots, TlsRoots::Amazon);
        let system =
            SweeperConfig::from_lookup(|k| if k == "TLS_ROOTS" { Some("system".into()) } else { all.get(k).cloned() });
        assert_eq!(system.unwrap().tls_roots, TlsRoots::System);
        let err = SweeperConfig::from_lookup(|k| all.get(k).filter(|_| k != "LIPIA_EVENTS_QUEUE_URL").cloned());
        assert_eq!(err.unwrap_err(), ConfigError::Missing("LIPIA_EVENTS_QUEUE_URL".into()));
    }

    #[test]
    fn dialects_can_be_pinned() {
        let c = config(&[BASE[0], BASE[1], ("WEBHOOK_SECRETS", "a"), ("CANONICAL_DIALECTS", "java, postman")]).unwrap();
        assert_eq!(c.verify.dialects, [Dialect::Java, Dialect::Postman]);
        assert_eq!(config(&[BASE[0], BASE[1], ("WEBHOOK_SECRETS", "a")]).unwrap().verify.dialects, Dialect::ALL);
        let err = config(&[BASE[0], BASE[1], ("WEBHOOK_SECRETS", "a"), ("CANONICAL_DIALECTS", "php")]).unwrap_err();
        assert!(err.to_string().contains("CANONICAL_DIALECTS"), "{err}");
    }

    #[test]
    fn cidrs_and_bare_addresses() {
        let nets = parse_cidrs("54.243.89.55, 10.0.0.0/8,2001:db8::/32").unwrap();
        assert_eq!(nets.len(), 3);
        assert!(nets[0].contains(&"54.243.89.55".parse::<std::net::IpAddr>().unwrap()));
    }
}
