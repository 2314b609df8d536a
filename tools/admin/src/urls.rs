//! `urls`: per provider, the callback URL to register and what the provider needs besides it. For Lipia
//! and MUDA the URL ends in the token (the first value of the provider's secret parameter), masked unless
//! the operator asks for it.

use payhooks::aws::{SsmClient, SsmSecrets};
use payhooks::config::{provider_overrides, Config, SecretSource};
use payhooks::ports::SecretLoader;
use payhooks::providers::{self, Route};
use payhooks::Provider;
use serde::Serialize;

use crate::deployment::{Deployment, Part};
use crate::Error;

/// What a masked token prints as.
pub const MASK: &str = "****";

#[derive(Debug, Clone, Serialize)]
pub struct CallbackUrl {
    pub provider: Provider,
    /// The URL to register (its token masked unless revealed).
    pub url: String,
    /// Where the provider's secret lives.
    pub secret: String,
    /// What the provider needs besides the URL, and what a rotation means for it.
    pub register: &'static str,
}

/// Every provider's URL in `deployment`; tokens read from the secret parameters (or, locally, from the
/// configured secrets) and shown only with `reveal`.
pub async fn callback_urls(deployment: &Deployment, ssm: &SsmClient, reveal: bool) -> Result<Vec<CallbackUrl>, Error> {
    let mut urls = Vec::new();
    let mut parts: Vec<Part> = Provider::ALL.map(Part::CallbackUrl).into();
    parts.push(Part::SecretsParameterPrefix);
    let bases: Vec<String> = match deployment {
        Deployment::Stack { .. } => deployment.require(&parts)?,
        Deployment::Environment(_) => {
            let base = deployment.variable("PAYHOOKS_URL").ok_or(
                "missing PAYHOOKS_URL: give --stack NAME for a deployed stack, or for the `make dev` stack \
                 `set -a; . target/local/demo.env; set +a`",
            )?;
            let base = base.trim_end_matches('/');
            Provider::ALL
                .iter()
                .map(|&p| {
                    let path = providers::route(p).path(p, Some(""));
                    format!("{base}{}", path.strip_prefix("/webhooks").unwrap_or(&path))
                })
                .collect()
        }
    };
    for (provider, base) in Provider::ALL.into_iter().zip(bases) {
        let source = secret_source(deployment, provider)?;
        let secret = match &source {
            SecretSource::SsmParameter(name) => format!("SSM parameter {name}"),
            SecretSource::Inline(_) => format!("{}_WEBHOOK_SECRETS", provider.name().to_ascii_uppercase()),
        };
        let url = match providers::route(provider) {
            Route::Plain => base,
            Route::Token if !reveal => format!("{base}{MASK}"),
            Route::Token => {
                let secrets = SsmSecrets::new(ssm.clone(), source, None)
                    .load()
                    .await
                    .map_err(|e| crate::Failed::new(format!("cannot read {provider}'s token from its {secret}"), e))?;
                format!("{base}{}", secrets.webhook.current().expose())
            }
        };
        urls.push(CallbackUrl { provider, url, secret, register: providers::registration(provider) });
    }
    Ok(urls)
}

/// Where `provider`'s secrets come from in `deployment`.
pub fn secret_source(deployment: &Deployment, provider: Provider) -> Result<SecretSource, Error> {
    match deployment {
        Deployment::Stack { .. } => {
            let prefix = deployment.require(&[Part::SecretsParameterPrefix])?.remove(0);
            Ok(SecretSource::SsmParameter(format!("{prefix}/{provider}")))
        }
        Deployment::Environment(env) => {
            let config = Config::from_lookup(provider, provider_overrides(provider, |n| env.get(n).cloned()))?;
            Ok(config.secrets)
        }
    }
}
