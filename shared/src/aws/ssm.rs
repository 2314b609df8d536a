use async_trait::async_trait;

use crate::config::SecretSource;
use crate::error::{BoxError, SecretsError};
use crate::ports::SecretLoader;
use crate::providers::Secrets;
use crate::verify::SecretSet;

/// A function's secrets from where its configuration says: inline values, or SSM SecureString parameters
/// (`WEBHOOK_SECRETS_PARAM`, `MUDA_SIGNING_KEYS_PARAM`) in the same comma-separated format.
#[derive(Debug, Clone)]
pub struct SsmSecrets {
    client: aws_sdk_ssm::Client,
    webhook: SecretSource,
    signing_keys: Option<SecretSource>,
}

impl SsmSecrets {
    pub fn new(client: aws_sdk_ssm::Client, webhook: SecretSource, signing_keys: Option<SecretSource>) -> Self {
        Self { client, webhook, signing_keys }
    }

    async fn load_one(&self, source: &SecretSource, what: &'static str) -> Result<SecretSet, SecretsError> {
        let name = match source {
            SecretSource::Inline(set) => return Ok(set.clone()),
            SecretSource::SsmParameter(name) => name,
        };
        let fail = |source: BoxError| SecretsError { source_name: format!("SSM parameter {name}"), source };
        let out =
            self.client.get_parameter().name(name).with_decryption(true).send().await.map_err(|e| fail(e.into()))?;
        let value = out.parameter().and_then(|p| p.value()).ok_or_else(|| fail("parameter has no value".into()))?;
        SecretSet::parse(value, what).map_err(|e| fail(e.into()))
    }
}

#[async_trait]
impl SecretLoader for SsmSecrets {
    async fn load(&self) -> Result<Secrets, SecretsError> {
        let webhook = self.load_one(&self.webhook, "WEBHOOK_SECRETS_PARAM").await?;
        let signing_keys = match &self.signing_keys {
            Some(source) => Some(self.load_one(source, "MUDA_SIGNING_KEYS_PARAM").await?),
            None => None,
        };
        Ok(Secrets { webhook, signing_keys })
    }
}
