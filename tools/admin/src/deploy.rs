//! `deploy-config`: each function's configuration as the SAM template gives it, from a deployed stack's
//! outputs and parameters, for `cargo lambda deploy` (`scripts/deploy-functions.sh`). The template drift test
//! holds this against `infra/template.yaml`, and the moto test holds the deployed functions to it.

use std::collections::BTreeMap;
use std::path::Path;

use payhooks::Provider;

use crate::deployment::{Deployment, Function, Part};
use crate::Error;

/// The template's `Globals.Function` memory and timeout (no function sets its own).
pub const MEMORY_MB: u32 = 256;
pub const TIMEOUT_SECS: u32 = 10;
pub const RUNTIME: &str = "provided.al2023";

/// The template's `Globals.Function.Environment`: each variable and the parameter it is set from
/// (`EVENTS_TABLE`, the table, is added to it).
const GLOBAL_PARAMETERS: [(&str, &str); 8] = [
    ("RUST_LOG", "LogLevel"),
    ("MAX_BODY_BYTES", "MaxBodyBytes"),
    ("MAX_EVENT_AGE_SECS", "MaxEventAgeSecs"),
    ("EVENT_TTL_DAYS", "EventTtlDays"),
    ("IDEMPOTENCY_TTL_DAYS", "IdempotencyTtlDays"),
    ("ALLOWED_SOURCE_IPS", "AllowedSourceIps"),
    ("SECRETS_REFRESH_SECS", "SecretsRefreshSecs"),
    ("TLS_ROOTS", "TlsRoots"),
];

/// A provider function's own variables set from a parameter (its settings, from its module).
fn provider_parameters(provider: Provider) -> Vec<(String, &'static str)> {
    payhooks::providers::settings(provider).iter().map(|s| (s.deployed_variable(), s.template_parameter())).collect()
}

/// One function as `cargo lambda deploy` deploys it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FunctionConfig {
    pub function: Function,
    /// The deployed function's name (`<stack>-<binary>`).
    pub name: String,
    pub role: String,
    pub architecture: String,
    pub memory_mb: u32,
    pub timeout_secs: u32,
    pub environment: BTreeMap<String, String>,
}

/// Every function's configuration in a deployed stack, or an error naming everything missing.
pub fn function_configs(stack: &Deployment) -> Result<Vec<FunctionConfig>, Error> {
    let mut parts = vec![Part::Table, Part::SecretsParameterPrefix, Part::Architecture];
    parts.extend(Provider::ALL.map(Part::Queue));
    for f in Function::all() {
        parts.extend([Part::FunctionName(f), Part::FunctionRole(f)]);
    }
    stack.require(&parts)?;
    let get = |part| stack.get(part).unwrap_or_default();
    let mut wanted: Vec<&str> = GLOBAL_PARAMETERS.iter().map(|(_, p)| *p).collect();
    for provider in Provider::ALL {
        wanted.extend(provider_parameters(provider).iter().map(|(_, p)| *p));
    }
    let missing: Vec<&str> = wanted.iter().copied().filter(|p| stack.parameter(p).is_none()).collect();
    if !missing.is_empty() {
        return Err(
            format!("the stack has no parameter {}: redeploy it from infra/template.yaml", missing.join(", ")).into()
        );
    }
    let param = |name: &str| stack.parameter(name).unwrap_or_default().to_owned();

    let mut global: BTreeMap<String, String> =
        GLOBAL_PARAMETERS.iter().map(|(var, p)| ((*var).to_owned(), param(p))).collect();
    global.insert("EVENTS_TABLE".into(), get(Part::Table));
    Ok(Function::all()
        .map(|function| {
            let mut environment = global.clone();
            match function {
                Function::Provider(provider) => {
                    environment.insert("EVENTS_QUEUE_URL".into(), get(Part::Queue(provider)));
                    environment.insert(
                        "WEBHOOK_SECRETS_PARAM".into(),
                        format!("{}/{provider}", get(Part::SecretsParameterPrefix)),
                    );
                    for (var, p) in provider_parameters(provider) {
                        environment.insert(var, param(p));
                    }
                }
                Function::Sweeper => {
                    for provider in Provider::ALL {
                        let var = Part::Queue(provider).variable().expect("a queue has a variable");
                        environment.insert(var, get(Part::Queue(provider)));
                    }
                }
            }
            FunctionConfig {
                function,
                name: get(Part::FunctionName(function)),
                role: get(Part::FunctionRole(function)),
                architecture: get(Part::Architecture),
                memory_mb: MEMORY_MB,
                timeout_secs: TIMEOUT_SECS,
                environment,
            }
        })
        .collect())
}

/// Write `functions.tsv` and one `<binary>.env` per function into `dir`, for `scripts/deploy-functions.sh`.
/// Values are single-quoted (`cargo lambda deploy --env-file` keeps commas, spaces and `$` in them as
/// they are); a value that cannot be written so is refused.
pub fn write(configs: &[FunctionConfig], dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut table = String::new();
    for c in configs {
        let mut env = String::new();
        for (key, value) in &c.environment {
            if value.contains(['\'', '\n', '\r']) {
                return Err(
                    format!("{}: {key} holds a quote or a line break, which an env file cannot carry", c.name).into()
                );
            }
            env.push_str(&format!("{key}='{value}'\n"));
        }
        let path = dir.join(format!("{}.env", c.function.binary()));
        std::fs::write(&path, env).map_err(|e| format!("{}: {e}", path.display()))?;
        table.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            c.name,
            c.function.binary(),
            c.role,
            c.memory_mb,
            c.timeout_secs,
            c.architecture
        ));
    }
    let path = dir.join("functions.tsv");
    std::fs::write(&path, table).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deploy_configuration_names_every_function_of_the_template() {
        let outputs = Function::all()
            .flat_map(|f| {
                [
                    (format!("{}FunctionName", f.template_name()), format!("s-{f}")),
                    (format!("{}FunctionRoleArn", f.template_name()), format!("arn:role/{f}")),
                ]
            })
            .chain(Provider::ALL.map(|p| (format!("{}QueueUrl", p.template_name()), format!("https://q/{p}"))))
            .chain([
                ("EventsTableName".to_owned(), "t".to_owned()),
                ("SecretsParameterPrefix".to_owned(), "/p".to_owned()),
                ("Architecture".to_owned(), "arm64".to_owned()),
            ])
            .collect();
        let parameters = BTreeMap::new();
        let stack = Deployment::Stack { name: "s".into(), outputs, parameters };
        let err = function_configs(&stack).unwrap_err().to_string();
        assert!(err.contains("LogLevel") && err.contains("MudaSigningKeysParameter"), "every missing one: {err}");
    }
}
