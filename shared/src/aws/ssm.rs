use async_trait::async_trait;

use crate::error::{BoxError, SecretsError};
use crate::ports::SecretLoader;
use crate::verify::SecretSet;

/// Secrets from an SSM SecureString parameter (`WEBHOOK_SECRETS_PARAM`), same comma-separated format as
/// `WEBHOOK_SECRETS`.
#[derive(Debug, Clone)]
pub struct SsmSecrets {
    client: aws_sdk_ssm::Client,
    name: String,
}

impl SsmSecrets {
    pub fn new(client: aws_sdk_ssm::Client, name: String) -> Self {
        Self { client, name }
    }
}

#[async_trait]
impl SecretLoader for SsmSecrets {
    async fn load(&self) -> Result<SecretSet, SecretsError> {
        let fail = |source: BoxError| SecretsError { source_name: format!("SSM parameter {}", self.name), source };
        let out = self
            .client
            .get_parameter()
            .name(&self.name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| fail(e.into()))?;
        let value = out.parameter().and_then(|p| p.value()).ok_or_else(|| fail("parameter has no value".into()))?;
        SecretSet::parse(value, "WEBHOOK_SECRETS_PARAM").map_err(|e| fail(e.into()))
    }
}
