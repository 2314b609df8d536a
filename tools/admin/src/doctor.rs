//! `doctor`: a preflight of a deployment before the providers find what is wrong with it. Every check runs
//! (one failure does not hide the next) and says what it found; the command fails if any check does.

use std::collections::BTreeMap;

use aws_sdk_sqs::types::QueueAttributeName;
use payhooks::aws::{SsmClient, SsmSecrets, PENDING_INDEX};
use payhooks::config::{provider_overrides, Config};
use payhooks::ports::SecretLoader;
use payhooks::Provider;
use serde::Serialize;

use crate::deploy::{function_configs, FunctionConfig, RUNTIME};
use crate::deployment::{Deployment, Part};
use crate::{chain, Error};

/// One line of the checklist.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub check: String,
    pub ok: bool,
    pub detail: String,
}

/// The clients `doctor` reads with.
pub struct Clients {
    pub ddb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub ssm: SsmClient,
    pub lambda: aws_sdk_lambda::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub cloudformation: aws_sdk_cloudformation::Client,
}

fn check(name: impl Into<String>, result: Result<String, Error>) -> Check {
    match result {
        Ok(detail) => Check { check: name.into(), ok: true, detail },
        Err(e) => Check { check: name.into(), ok: false, detail: chain(e.as_ref()) },
    }
}

/// Run every check on `deployment`.
pub async fn doctor(deployment: &Deployment, clients: &Clients) -> Vec<Check> {
    let mut checks = Vec::new();
    let table = deployment.require(&[Part::Table]).map(|mut t| t.remove(0));
    checks.push(match table {
        Ok(table) => check(format!("table {table}"), table_check(clients, &table).await),
        Err(e) => check("table", Err(e)),
    });
    for provider in Provider::ALL {
        let queue = deployment.require(&[Part::Queue(provider)]).map(|mut q| q.remove(0));
        checks.push(match queue {
            Ok(queue) => check(format!("{provider} queue"), queue_check(clients, &queue).await),
            Err(e) => check(format!("{provider} queue"), Err(e)),
        });
    }
    for provider in Provider::ALL {
        checks.push(check(format!("{provider} secrets"), secrets_check(deployment, clients, provider).await));
    }
    match deployment {
        Deployment::Stack { .. } => {
            match function_configs(deployment) {
                Ok(configs) => {
                    for config in configs {
                        let result = function_check(clients, &config).await;
                        checks.push(check(format!("{} function {}", config.function, config.name), result));
                    }
                }
                Err(e) => checks.push(check("functions", Err(e))),
            }
            checks.push(check("alarms", alarms_check(deployment, clients).await));
        }
        Deployment::Environment(env) => {
            for provider in Provider::ALL {
                let lookup = provider_overrides(provider, |n| env.get(n).cloned());
                let result = Config::from_lookup(provider, lookup)
                    .map(|_| "configuration reads".to_owned())
                    .map_err(Error::from);
                checks.push(check(format!("{provider} configuration"), result));
            }
            checks.push(Check {
                check: "alarms".into(),
                ok: true,
                detail: "not checked: a local stack has none (give --stack NAME for a deployed one)".into(),
            });
        }
    }
    checks
}

async fn table_check(clients: &Clients, table: &str) -> Result<String, Error> {
    let out = clients.ddb.describe_table().table_name(table).send().await?;
    let description = out.table().ok_or("DescribeTable returned no table")?;
    let index = description.global_secondary_indexes().iter().any(|i| i.index_name() == Some(PENDING_INDEX));
    if !index {
        return Err(format!("no index {PENDING_INDEX}: the sweeper cannot find unfinished deliveries").into());
    }
    let ttl = clients.ddb.describe_time_to_live().table_name(table).send().await?;
    let ttl = ttl.time_to_live_description();
    let enabled = ttl.and_then(|t| t.time_to_live_status()).is_some_and(|s| s.as_str() == "ENABLED");
    let attribute = ttl.and_then(|t| t.attribute_name());
    if !enabled || attribute != Some(payhooks::aws::attribute::EXPIRES_AT) {
        return Err("time to live is not enabled on expires_at: bodies and markers would never expire".into());
    }
    Ok(format!("index {PENDING_INDEX}, time to live on expires_at"))
}

async fn queue_check(clients: &Clients, queue: &str) -> Result<String, Error> {
    let out =
        clients.sqs.get_queue_attributes().queue_url(queue).attribute_names(QueueAttributeName::All).send().await?;
    let attributes = out.attributes().cloned().unwrap_or_default();
    if attributes.get(&QueueAttributeName::FifoQueue).map(String::as_str) != Some("true") {
        return Err(format!("{queue} is not a FIFO queue: events would lose their order and deduplication").into());
    }
    let policy = attributes
        .get(&QueueAttributeName::RedrivePolicy)
        .ok_or_else(|| format!("{queue} has no dead-letter queue: a message its consumer cannot take is lost"))?;
    let policy: serde_json::Value = serde_json::from_str(policy)?;
    let dlq_arn = policy["deadLetterTargetArn"].as_str().ok_or("the redrive policy names no dead-letter queue")?;
    let dlq_name = dlq_arn.rsplit(':').next().unwrap_or_default();
    clients
        .sqs
        .get_queue_url()
        .queue_name(dlq_name)
        .send()
        .await
        .map_err(|e| crate::Failed::new(format!("its dead-letter queue {dlq_name} is missing"), e))?;
    Ok(format!("FIFO, dead-letter queue {dlq_name}"))
}

async fn secrets_check(deployment: &Deployment, clients: &Clients, provider: Provider) -> Result<String, Error> {
    let source = crate::urls::secret_source(deployment, provider)?;
    let signing_keys = payhooks::providers::signing_keys_parameter(provider)
        .and_then(|parameter| deployment.parameter(parameter))
        .filter(|name| !name.is_empty())
        .map(|name| payhooks::config::SecretSource::SsmParameter(name.to_owned()));
    let what = match &source {
        payhooks::config::SecretSource::SsmParameter(name) => format!("SSM parameter {name}"),
        payhooks::config::SecretSource::Inline(_) => "inline secrets".to_owned(),
    };
    let secrets = SsmSecrets::new(clients.ssm.clone(), source, signing_keys).load().await?;
    let count = secrets.webhook.indexed().count();
    Ok(format!("{what}: {count} secret(s){}", if count > 1 { " (a rotation in progress)" } else { "" }))
}

/// The deployed function against the configuration the template gives it.
async fn function_check(clients: &Clients, want: &FunctionConfig) -> Result<String, Error> {
    let got = clients.lambda.get_function_configuration().function_name(&want.name).send().await?;
    let mut wrong = Vec::new();
    if got.runtime().map(|r| r.as_str()) != Some(RUNTIME) {
        wrong.push(format!("runtime {} (want {RUNTIME})", got.runtime().map_or("none", |r| r.as_str())));
    }
    let arch: Vec<&str> = got.architectures().iter().map(|a| a.as_str()).collect();
    if arch != [want.architecture.as_str()] {
        wrong.push(format!("architecture {arch:?} (want {})", want.architecture));
    }
    if got.memory_size() != Some(want.memory_mb as i32) {
        wrong.push(format!("memory {} MB (want {})", got.memory_size().unwrap_or(0), want.memory_mb));
    }
    if got.timeout() != Some(want.timeout_secs as i32) {
        wrong.push(format!("timeout {} s (want {})", got.timeout().unwrap_or(0), want.timeout_secs));
    }
    if got.role() != Some(want.role.as_str()) {
        wrong.push(format!("role {} (want {})", got.role().unwrap_or("none"), want.role));
    }
    let env: BTreeMap<String, String> =
        got.environment().and_then(|e| e.variables()).map(|v| v.clone().into_iter().collect()).unwrap_or_default();
    let differ: Vec<&str> = want
        .environment
        .keys()
        .chain(env.keys())
        .filter(|k| want.environment.get(*k) != env.get(*k))
        .map(String::as_str)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if !differ.is_empty() {
        wrong.push(format!("environment differs from the template's in {}", differ.join(", ")));
    }
    if wrong.is_empty() {
        Ok(format!(
            "{}, {} MB, {} s, environment as the template gives it",
            want.architecture, want.memory_mb, want.timeout_secs
        ))
    } else {
        Err(format!("{}: redeploy it (make deploy, or make deploy-functions)", wrong.join("; ")).into())
    }
}

/// Every alarm of the stack notifies someone.
async fn alarms_check(deployment: &Deployment, clients: &Clients) -> Result<String, Error> {
    let stack = deployment.stack_name().unwrap_or_default();
    let resources: Vec<_> = clients
        .cloudformation
        .list_stack_resources()
        .stack_name(stack)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await?;
    let mut alarms: BTreeMap<String, bool> = resources
        .iter()
        .filter(|r| r.resource_type() == Some("AWS::CloudWatch::Alarm"))
        .filter_map(|r| Some((r.physical_resource_id()?.to_owned(), false)))
        .collect();
    // The alarms CloudFormation named for the stack (`<stack>-<LogicalId>-<suffix>`), with their actions.
    let described: Vec<_> = clients
        .cloudwatch
        .describe_alarms()
        .alarm_name_prefix(format!("{stack}-"))
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await?;
    for alarm in described.iter().flat_map(|page| page.metric_alarms()) {
        let Some(name) = alarm.alarm_name() else { continue };
        let ours = alarms.contains_key(name) || is_named_for(stack, name);
        if ours {
            let notifies = !alarm.alarm_actions().is_empty() && alarm.actions_enabled() != Some(false);
            alarms.insert(name.to_owned(), notifies);
        }
    }
    if alarms.is_empty() {
        return Err(format!("stack {stack} has no alarms").into());
    }
    let silent: Vec<&str> = alarms.iter().filter(|(_, notifies)| !**notifies).map(|(n, _)| n.as_str()).collect();
    if !silent.is_empty() {
        return Err(format!(
            "{} of {} alarm(s) notify no one: {} (redeploy with AlarmTopicArn or AlarmEmail, or give them an action)",
            silent.len(),
            alarms.len(),
            silent.join(", ")
        )
        .into());
    }
    let topic = deployment.get(Part::AlarmTopic).unwrap_or_else(|| "their actions".into());
    Ok(format!("{} alarm(s), each notifying {topic}", alarms.len()))
}

/// Whether CloudFormation gave `name` to an alarm of `stack`: `<stack>-<LogicalId>-<suffix>`, where neither
/// the logical id nor the suffix has a `-` (so stack `payhooks` does not claim `payhooks-staging`'s).
fn is_named_for(stack: &str, name: &str) -> bool {
    name.strip_prefix(stack)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|rest| rest.split('-').count() == 2 && rest.split('-').all(|part| !part.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alarm_is_the_stacks_only_under_its_own_name() {
        assert!(is_named_for("payhooks", "payhooks-NiobiErrorsAlarm-1A2B3C"));
        assert!(!is_named_for("payhooks", "payhooks-staging-NiobiErrorsAlarm-1A2B3C"));
        assert!(!is_named_for("payhooks", "payhooksx-NiobiErrorsAlarm-1A2B3C"));
        assert!(!is_named_for("payhooks", "payhooks-NiobiErrorsAlarm"));
    }
}
