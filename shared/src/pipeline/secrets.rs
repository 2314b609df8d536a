//! The secrets a function verifies with, read again from their source on an interval.

use std::sync::Arc;
use std::time::Duration;

use crate::error::SecretsError;
use crate::ports::SecretLoader;
use crate::verify::Secrets;

/// How long loaded secrets are used before their source is read again, unless configured.
pub(super) const DEFAULT_SECRETS_REFRESH: Duration = Duration::from_secs(crate::config::DEFAULT_SECRETS_REFRESH_SECS);

/// How long a refresh may take before the secrets already loaded are used for this callback.
pub(super) const SECRETS_REFRESH_BUDGET: Duration = Duration::from_secs(2);

/// After a failed refresh, how long the secrets already loaded are used before the source is tried again.
pub(super) const SECRETS_REFRESH_RETRY: Duration = Duration::from_secs(30);

/// The secrets a function verifies with. Loaded during init (or by the first callback, whose failure answers
/// 503), then read again from their source once they are older than `refresh`, so that a secret added for a
/// rotation, or removed because it leaked, reaches instances that stay warm for hours. A refresh that fails or
/// takes too long keeps the secrets already loaded (a callback is never refused because SSM is slow) and is
/// tried again [`SECRETS_REFRESH_RETRY`] later.
pub(super) struct SecretCache {
    pub(super) loader: Arc<dyn SecretLoader>,
    refresh: Duration,
    current: tokio::sync::Mutex<Option<LoadedSecrets>>,
}

struct LoadedSecrets {
    secrets: Arc<Secrets>,
    /// When the source is to be read again.
    due: tokio::time::Instant,
}

impl SecretCache {
    pub(super) fn new(loader: Arc<dyn SecretLoader>, refresh: Duration) -> Self {
        Self { loader, refresh, current: tokio::sync::Mutex::new(None) }
    }

    pub(super) async fn get(&self) -> Result<Arc<Secrets>, SecretsError> {
        let mut current = self.current.lock().await;
        let now = tokio::time::Instant::now();
        let Some(loaded) = current.as_mut() else {
            let secrets = Arc::new(self.loader.load().await?);
            *current = Some(LoadedSecrets { secrets: secrets.clone(), due: now + self.refresh });
            return Ok(secrets);
        };
        if now < loaded.due {
            return Ok(loaded.secrets.clone());
        }
        match tokio::time::timeout(SECRETS_REFRESH_BUDGET, self.loader.load()).await {
            Ok(Ok(fresh)) => *loaded = LoadedSecrets { secrets: Arc::new(fresh), due: now + self.refresh },
            failed => {
                let why = why_not_ready(failed, SECRETS_REFRESH_BUDGET).unwrap_or_default();
                tracing::warn!(error = %why, "secrets could not be read again: the ones loaded before stay in use");
                loaded.due = now + SECRETS_REFRESH_RETRY;
            }
        }
        Ok(loaded.secrets.clone())
    }
}

/// Why a step (a warm-up part, a secret refresh) is not done: its error with every cause
/// ([`crate::error::chain`]), or that it ran out of `budget`; `None` if it is done.
pub(super) fn why_not_ready<T, E: std::error::Error>(
    result: Result<Result<T, E>, tokio::time::error::Elapsed>,
    budget: Duration,
) -> Option<String> {
    match result {
        Ok(Ok(_)) => None,
        Ok(Err(err)) => Some(crate::error::chain(&err)),
        Err(_) => Some(format!("not done within {} ms", budget.as_millis())),
    }
}
