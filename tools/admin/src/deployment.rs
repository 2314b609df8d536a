//! Where a deployment's parts are: a CloudFormation stack's outputs and parameters (`--stack NAME`), or the
//! environment the functions read (`make dev` writes it to `target/local/demo.env`). A command asks for the
//! parts it uses, and hears about every missing one at once.

use std::collections::BTreeMap;
use std::fmt;

use payhooks::Provider;

use crate::Error;

/// A function of the stack: one per provider, and the sweeper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Function {
    Provider(Provider),
    Sweeper,
}

impl Function {
    pub fn all() -> impl Iterator<Item = Function> {
        Provider::ALL.into_iter().map(Function::Provider).chain([Function::Sweeper])
    }

    /// Its binary (the crate under `functions/`).
    pub fn binary(self) -> &'static str {
        match self {
            Function::Provider(p) => p.name(),
            Function::Sweeper => "sweeper",
        }
    }

    /// Its name in the template's resource and output names.
    pub fn template_name(self) -> String {
        match self {
            Function::Provider(p) => p.template_name(),
            Function::Sweeper => "Sweeper".to_owned(),
        }
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.binary())
    }
}

impl serde::Serialize for Function {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.binary())
    }
}

/// A part of a deployment a command can need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Table,
    Queue(Provider),
    /// The provider's callback URL; for Lipia and MUDA without the token.
    CallbackUrl(Provider),
    FunctionName(Function),
    FunctionRole(Function),
    AlarmTopic,
    SecretsParameterPrefix,
    Architecture,
}

impl Part {
    /// The stack output that holds it.
    pub fn output(self) -> String {
        match self {
            Part::Table => "EventsTableName".into(),
            Part::Queue(p) => format!("{}QueueUrl", p.template_name()),
            Part::CallbackUrl(p) => match payhooks::providers::route(p) {
                payhooks::providers::Route::Token => format!("{}CallbackUrlBase", p.template_name()),
                payhooks::providers::Route::Plain => format!("{}CallbackUrl", p.template_name()),
            },
            Part::FunctionName(f) => format!("{}FunctionName", f.template_name()),
            Part::FunctionRole(f) => format!("{}FunctionRoleArn", f.template_name()),
            Part::AlarmTopic => "AlarmTopic".into(),
            Part::SecretsParameterPrefix => "SecretsParameterPrefix".into(),
            Part::Architecture => "Architecture".into(),
        }
    }

    /// The environment variable that holds it where there is no stack (the functions' own names).
    pub fn variable(self) -> Option<String> {
        match self {
            Part::Table => Some("EVENTS_TABLE".into()),
            Part::Queue(p) => Some(format!("{}_EVENTS_QUEUE_URL", p.name().to_ascii_uppercase())),
            _ => None,
        }
    }
}

/// Where the parts are read from.
#[derive(Debug, Clone)]
pub enum Deployment {
    /// A deployed stack: its outputs and parameters, read once.
    Stack { name: String, outputs: BTreeMap<String, String>, parameters: BTreeMap<String, String> },
    /// The process environment (a local stack, or a deployment described by hand).
    Environment(BTreeMap<String, String>),
}

impl Deployment {
    /// The stack's outputs and parameters, from `DescribeStacks`.
    pub async fn from_stack(cfn: &aws_sdk_cloudformation::Client, name: &str) -> Result<Self, Error> {
        let out = cfn.describe_stacks().stack_name(name).send().await.map_err(|e| {
            use aws_sdk_cloudformation::error::ProvideErrorMetadata;
            let what = format!("cannot read stack {name} (is it deployed, in this region and account?)");
            // CloudFormation's errors are all `ValidationError`s with the reason in the message.
            match (e.code(), e.message()) {
                (Some(code), Some(message)) => Error::from(format!("{what}: {code}: {message}")),
                _ => Error::from(crate::Failed::new(what, e)),
            }
        })?;
        let stack = out.stacks().first().ok_or_else(|| format!("no stack {name}"))?;
        let outputs = stack
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
            .collect();
        let parameters = stack
            .parameters()
            .iter()
            .filter_map(|p| Some((p.parameter_key()?.to_owned(), p.parameter_value().unwrap_or_default().to_owned())))
            .collect();
        Ok(Deployment::Stack { name: name.to_owned(), outputs, parameters })
    }

    pub fn from_env() -> Self {
        Deployment::Environment(std::env::vars().collect())
    }

    pub fn stack_name(&self) -> Option<&str> {
        match self {
            Deployment::Stack { name, .. } => Some(name),
            Deployment::Environment(_) => None,
        }
    }

    /// One part, if the deployment has it.
    pub fn get(&self, part: Part) -> Option<String> {
        let value = match self {
            Deployment::Stack { outputs, .. } => outputs.get(&part.output()).cloned(),
            Deployment::Environment(env) => part.variable().and_then(|v| env.get(&v).cloned()),
        };
        value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// A stack parameter (the stack's value, its default included).
    pub fn parameter(&self, name: &str) -> Option<&str> {
        match self {
            Deployment::Stack { parameters, .. } => parameters.get(name).map(String::as_str),
            Deployment::Environment(_) => None,
        }
    }

    /// An environment variable of a local deployment.
    pub fn variable(&self, name: &str) -> Option<&str> {
        match self {
            Deployment::Environment(env) => env.get(name).map(String::as_str).filter(|v| !v.trim().is_empty()),
            Deployment::Stack { .. } => None,
        }
    }

    /// Every part asked for, in order, or one error naming every part that is missing and what to do.
    pub fn require(&self, parts: &[Part]) -> Result<Vec<String>, Error> {
        let mut missing = Vec::new();
        let mut found = Vec::new();
        for &part in parts {
            match self.get(part) {
                Some(value) => found.push(value),
                None => missing.push(part),
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        Err(match self {
            Deployment::Stack { name, .. } => {
                let names: Vec<String> = missing.iter().map(|p| p.output()).collect();
                format!(
                    "stack {name} has no output {}: is it a payhooks stack, deployed from this version of \
                     infra/template.yaml (make build && make deploy)?",
                    names.join(", ")
                )
            }
            Deployment::Environment(_) => {
                let names: Vec<String> = missing.iter().map(|p| p.variable().unwrap_or_else(|| p.output())).collect();
                let stack_only = missing.iter().any(|p| p.variable().is_none());
                format!(
                    "missing {}: give --stack NAME to read a deployed stack{}",
                    names.join(", "),
                    if stack_only {
                        " (these come only from a stack's outputs)".to_owned()
                    } else {
                        ", or set them: for the `make dev` stack, `set -a; . target/local/demo.env; set +a`".to_owned()
                    }
                )
            }
        }
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_missing_part_is_named_at_once() {
        let local = Deployment::Environment(BTreeMap::from([("EVENTS_TABLE".to_owned(), "t".to_owned())]));
        let err = local.require(&[Part::Table, Part::Queue(Provider::Lipia), Part::Queue(Provider::Muda)]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("LIPIA_EVENTS_QUEUE_URL, MUDA_EVENTS_QUEUE_URL"), "{text}");
        assert!(text.contains("target/local/demo.env") && text.contains("--stack"), "{text}");
        assert_eq!(local.require(&[Part::Table]).unwrap(), ["t"]);

        let stack = Deployment::Stack { name: "s".into(), outputs: BTreeMap::new(), parameters: BTreeMap::new() };
        let text = stack.require(&[Part::Table, Part::CallbackUrl(Provider::Lipia)]).unwrap_err().to_string();
        assert!(text.contains("EventsTableName, LipiaCallbackUrlBase"), "{text}");
    }
}
