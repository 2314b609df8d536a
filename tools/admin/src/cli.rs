//! The command line of `payhooks-admin`, the operator tool. Works on a deployed stack (`--stack NAME`: its outputs) or on what the
//! environment names (the functions' own variables: `make dev` writes them to `target/local/demo.env`); each
//! command asks only for what it uses. `--help` on every command; tables by default, JSON with `--json`.
//! Exit codes: 0 done, 1 the answer is no (`verify` refuses, `doctor` fails), 2 the command could not run.

use std::collections::HashMap;
use std::io::{BufRead, Write};

use chrono::Utc;
use clap::{Parser, Subcommand};
use payhooks::aws::attribute;
use payhooks::config::{provider_overrides, Config, Retention};
use payhooks::ports::{RecordState, SecretLoader};
use payhooks::Provider;

use crate::deployment::{Deployment, Function, Part};
use crate::{chain, deploy, doctor, human, new_table, since, table, urls, verify, Admin, Error, Failed};

#[derive(Parser)]
#[command(
    name = "payhooks-admin",
    about = "Operate payhooks: provider URLs, a preflight, events (inspect, list, replay, reprocess, redrive), \
             a captured callback's verification, and the cargo lambda deploy configuration",
    after_help = "Where things are: --stack NAME reads a deployed stack's outputs; without it, the functions' own \
                  variables (EVENTS_TABLE, <PROVIDER>_EVENTS_QUEUE_URL, ...). For the `make dev` stack: \
                  set -a; . target/local/demo.env; set +a"
)]
pub struct Cli {
    /// A deployed payhooks stack (CloudFormation): the table, queues, functions and URLs come from its
    /// outputs. Without it, from the environment.
    #[arg(long, global = true, env = "PAYHOOKS_STACK")]
    stack: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Per provider, the callback URL to register and what the provider needs besides it. Lipia's and
    /// MUDA's URLs end in their token, masked unless --reveal.
    Urls {
        /// Print the tokens in the URLs (they are secrets: anyone holding one can post callbacks).
        #[arg(long)]
        reveal: bool,
    },
    /// Check a deployment before the providers do: secrets, table, queues, each function's configuration
    /// against the template's, alarms with an action. Exits 1 if any check fails.
    Doctor,
    /// Show an event's record (state, times, scheme, secret index, content hash), its transaction state and
    /// any conflict records. Quarantine ids (`<provider>:quarantined:<hash>`) work too.
    Inspect {
        /// The event id, e.g. niobi:payin:A7KQ2M9XW001:000000
        id: String,
        /// Also print the stored body, as received.
        #[arg(long)]
        body: bool,
    },
    /// List records by state. RECEIVED reads the sparse pending index (a query per shard); the other states
    /// scan the table.
    List {
        #[arg(long)]
        provider: Provider,
        /// RECEIVED, ENQUEUED, CONFLICT or QUARANTINED
        #[arg(long, value_parser = parse_state)]
        state: RecordState,
        /// Only records received since: 90s, 30m, 1h, 2d, or an RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
    },
    /// Send stored events to their queue again, for a consumer that lost them: a new deduplication id (so SQS
    /// does not drop them) and the CloudEvents extension attribute `replayed`.
    Replay {
        #[command(flatten)]
        selection: Selection,
    },
    /// Run quarantined callbacks' stored bodies through this version's code (after a model fix) and record
    /// and send the events they now yield, with a first delivery's idempotency: an event already sent is
    /// not sent again.
    Reprocess {
        #[command(flatten)]
        selection: Selection,
    },
    /// Move every message from a provider's dead-letter queue back to its queue.
    Redrive {
        #[arg(long)]
        provider: Provider,
    },
    /// Run a provider's authentication and normalisation on a captured callback with the configured secrets,
    /// and print what payhooks would do (for a 401 from Choice or Niobi: each dialect's signed string, the
    /// secret masked, and the setting that would verify it). With --stack, the deployed function's
    /// configuration. Exits 1 when payhooks would refuse it.
    Verify {
        #[arg(long)]
        provider: Provider,
        /// The body, exactly as captured.
        #[arg(long)]
        file: std::path::PathBuf,
        /// A request header, `Name: value` (repeatable).
        #[arg(long = "header", value_parser = parse_header)]
        headers: Vec<(String, String)>,
        /// The request path (Lipia, MUDA: it ends in the token), e.g. /webhooks/lipia/TOKEN
        #[arg(long)]
        path: Option<String>,
    },
    /// Write each function's configuration as the template gives it (from --stack's outputs) for
    /// `cargo lambda deploy`: OUT/functions.tsv and OUT/<binary>.env (`make deploy-functions` runs this).
    DeployConfig {
        /// The architecture of the binaries to deploy; refused if the stack's functions run another.
        #[arg(long)]
        arch: String,
        /// The directory to write to.
        #[arg(long = "out")]
        out: std::path::PathBuf,
    },
}

/// What `replay` and `reprocess` work on: ids, or a provider's records since a time; and how.
#[derive(clap::Args)]
struct Selection {
    /// Ids (`replay`: event ids; `reprocess`: quarantine ids, `<provider>:quarantined:<hash>`).
    ids: Vec<String>,
    /// Every record of this provider since --since (a scan): sent events for `replay`, quarantines for
    /// `reprocess`.
    #[arg(long, requires = "since")]
    provider: Option<Provider>,
    #[arg(long)]
    since: Option<String>,
    /// Do not ask for confirmation.
    #[arg(long)]
    yes: bool,
    /// Show what would be done, and write or send nothing.
    #[arg(long)]
    dry_run: bool,
}

/// The admin for `selection`'s providers, and the ids it names: those given, and with `--provider` and
/// `--since`, that provider's records in `states`. Empty is an error naming what to give.
async fn select(
    sdk: &aws_config::SdkConfig,
    deployment: &Deployment,
    selection: &Selection,
    states: &[RecordState],
    now: chrono::DateTime<Utc>,
) -> Result<(Admin, Vec<String>), Error> {
    let mut providers = providers_of(&selection.ids)?;
    providers.extend(selection.provider);
    let admin = admin(sdk, deployment, &providers)?;
    let mut ids = selection.ids.clone();
    if let (Some(provider), Some(window)) = (selection.provider, &selection.since) {
        ids.extend(admin.ids_since(provider, states, since(window, now)?).await?);
    }
    if ids.is_empty() {
        return Err("nothing selected: give ids, or --provider and --since".into());
    }
    Ok((admin, ids))
}

fn parse_state(s: &str) -> Result<RecordState, String> {
    RecordState::parse(&s.to_ascii_uppercase())
        .ok_or_else(|| format!("{s}: expected RECEIVED, ENQUEUED, CONFLICT or QUARANTINED"))
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    s.split_once(':')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .ok_or_else(|| format!("{s}: expected Name: value"))
}

/// An operator's SDK configuration: the whole credential chain (profiles, SSO, environment), over the
/// functions' one HTTPS client.
pub async fn operator_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(payhooks::aws::https_client(payhooks::config::TlsRoots::System))
        .load()
        .await
}

/// The deployment the command works on: `--stack`'s outputs, or the environment.
async fn deployment(sdk: &aws_config::SdkConfig, stack: Option<&str>) -> Result<Deployment, Error> {
    match stack {
        Some(name) => Deployment::from_stack(&aws_sdk_cloudformation::Client::new(sdk), name).await,
        None => Ok(Deployment::from_env()),
    }
}

/// The table and the queues of `providers`, or an error naming every one missing.
fn admin(sdk: &aws_config::SdkConfig, deployment: &Deployment, providers: &[Provider]) -> Result<Admin, Error> {
    let mut parts = vec![Part::Table];
    parts.extend(providers.iter().map(|&p| Part::Queue(p)));
    let mut found = deployment.require(&parts)?.into_iter();
    let table = found.next().unwrap_or_default();
    let queues: HashMap<Provider, String> = providers.iter().copied().zip(found).collect();
    Ok(Admin::new(aws_sdk_dynamodb::Client::new(sdk), aws_sdk_sqs::Client::new(sdk), table, queues))
}

/// The providers of event ids (`<provider>:...`).
fn providers_of(ids: &[String]) -> Result<Vec<Provider>, Error> {
    let mut providers = Vec::new();
    for id in ids {
        let provider: Provider = id.split(':').next().unwrap_or_default().parse().map_err(|e| format!("{id}: {e}"))?;
        if !providers.contains(&provider) {
            providers.push(provider);
        }
    }
    Ok(providers)
}

/// How long records are kept: the stack's parameters, or the functions' variables, or the defaults.
fn retention(deployment: &Deployment) -> Result<Retention, Error> {
    let days = |parameter: &str, variable: &str, default: std::time::Duration| -> Result<std::time::Duration, Error> {
        match deployment.parameter(parameter).or_else(|| deployment.variable(variable)) {
            Some(text) => {
                let days: u64 =
                    text.trim().parse().map_err(|_| format!("{variable}={text}: expected a number of days"))?;
                Ok(std::time::Duration::from_secs(days * 86_400))
            }
            None => Ok(default),
        }
    };
    let default = Retention::default();
    Ok(Retention {
        body: days("EventTtlDays", "EVENT_TTL_DAYS", default.body)?,
        marker: days("IdempotencyTtlDays", "IDEMPOTENCY_TTL_DAYS", default.marker)?,
    })
}

/// A provider function's configuration: with a stack, the deployed function's environment; otherwise the
/// process environment.
async fn function_config(
    sdk: &aws_config::SdkConfig,
    deployment: &Deployment,
    provider: Provider,
) -> Result<Config, Error> {
    match deployment {
        Deployment::Stack { .. } => {
            let name = deployment.require(&[Part::FunctionName(Function::Provider(provider))])?.remove(0);
            let out = aws_sdk_lambda::Client::new(sdk)
                .get_function_configuration()
                .function_name(&name)
                .send()
                .await
                .map_err(|e| Failed::new(format!("cannot read the configuration of function {name}"), e))?;
            let env: HashMap<String, String> =
                out.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
            Ok(Config::from_lookup(provider, |n| env.get(n).cloned())?)
        }
        Deployment::Environment(_) => {
            Ok(Config::from_lookup(provider, provider_overrides(provider, |n| std::env::var(n).ok()))?)
        }
    }
}

fn print(
    out: &mut dyn Write,
    json: bool,
    value: &impl serde::Serialize,
    text: impl FnOnce() -> String,
) -> Result<(), Error> {
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(value)?)?;
    } else {
        writeln!(out, "{}", text())?;
    }
    Ok(())
}

fn confirm(question: &str) -> bool {
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).is_ok() && answer.trim().eq_ignore_ascii_case("y")
}

/// Run one command with `sdk`, printing to `out`.
pub async fn run(cli: Cli, sdk: &aws_config::SdkConfig, out: &mut dyn Write) -> Result<(), Error> {
    let json = cli.json;
    let sdk = sdk.clone();
    let deployment = deployment(&sdk, cli.stack.as_deref()).await?;
    let now = Utc::now();
    match cli.command {
        Command::Urls { reveal } => {
            let urls = urls::callback_urls(&deployment, &payhooks::aws::SsmClient::new(&sdk), reveal).await?;
            print(out, json, &urls, || {
                let mut table = new_table(&["provider", "callback URL (POST)", "secret", "to register"]);
                // A URL and a parameter name are copied as they are: never wrapped.
                for column in [1, 2] {
                    if let Some(c) = table.column_mut(column) {
                        c.set_constraint(comfy_table::ColumnConstraint::ContentWidth);
                    }
                }
                for u in &urls {
                    table.add_row(vec![u.provider.to_string(), u.url.clone(), u.secret.clone(), u.register.to_owned()]);
                }
                let mut text = table.to_string();
                if !reveal && urls.iter().any(|u| u.url.ends_with(urls::MASK)) {
                    text.push_str(&format!("\n{} stands for a token: --reveal prints it", urls::MASK));
                }
                text
            })
        }
        Command::Doctor => {
            let clients = doctor::Clients {
                ddb: aws_sdk_dynamodb::Client::new(&sdk),
                sqs: aws_sdk_sqs::Client::new(&sdk),
                ssm: payhooks::aws::SsmClient::new(&sdk),
                lambda: aws_sdk_lambda::Client::new(&sdk),
                cloudwatch: aws_sdk_cloudwatch::Client::new(&sdk),
                cloudformation: aws_sdk_cloudformation::Client::new(&sdk),
            };
            let checks = doctor::doctor(&deployment, &clients).await;
            print(out, json, &checks, || {
                let mut table = new_table(&["", "check", "found"]);
                for c in &checks {
                    table.add_row(vec![if c.ok { "ok" } else { "FAIL" }, &c.check, &c.detail]);
                }
                table.to_string()
            })?;
            let failed = checks.iter().filter(|c| !c.ok).count();
            if failed > 0 {
                return Err(Refused::new(format!("{failed} check(s) failed")).into());
            }
            Ok(())
        }
        Command::Inspect { id, body } => {
            let found = admin(&sdk, &deployment, &[])?.inspect(&id, body).await?;
            print(out, json, &found, || {
                let mut out = table(&found.record, now);
                if let Some(t) = &found.transaction {
                    out.push_str(&format!("\n\ntransaction\n{}", table(t, now)));
                }
                for c in &found.conflicts {
                    out.push_str(&format!("\n\nconflict\n{}", table(c, now)));
                }
                if let Some(body) = &found.body {
                    out.push_str(&format!("\n\nbody\n{body}"));
                }
                out
            })
        }
        Command::List { provider, state, since: window } => {
            let from = window.map(|w| since(&w, now)).transpose()?;
            let records = admin(&sdk, &deployment, &[])?.list(provider, state, from).await?;
            print(out, json, &records, || {
                let mut table = new_table(&["id", "state", "type", "received"]);
                for r in &records {
                    let get = |k: &str| r.get(k).map_or_else(|| "-".to_owned(), |v| human(v, now));
                    table.add_row(vec![
                        get(attribute::PK),
                        get(attribute::STATE),
                        get(attribute::TYPE),
                        get(attribute::RECEIVED_AT),
                    ]);
                }
                format!("{table}\n{} record(s)", records.len())
            })
        }
        Command::Replay { selection } => {
            let sent = [RecordState::Enqueued, RecordState::Quarantined];
            let (admin, ids) = select(&sdk, &deployment, &selection, &sent, now).await?;
            let Selection { yes, dry_run, .. } = selection;
            let mut plans = Vec::new();
            for id in &ids {
                plans.push(admin.replay_plan(id, now).await?);
            }
            if dry_run {
                return print(out, json, &plans, || {
                    plans
                        .iter()
                        .map(|p| format!("would send {} to {} (dedup {})", p.id, p.queue, p.deduplication_id))
                        .collect::<Vec<_>>()
                        .join("\n")
                });
            }
            if !yes && !confirm(&format!("Replay {} event(s)?", plans.len())) {
                return Err("not confirmed: nothing sent".into());
            }
            for plan in &plans {
                admin.replay(plan).await?;
            }
            print(out, json, &plans.iter().map(|p| &p.id).collect::<Vec<_>>(), || {
                format!("replayed {} event(s)", plans.len())
            })
        }
        Command::Reprocess { selection } => {
            let (admin, ids) = select(&sdk, &deployment, &selection, &[RecordState::Quarantined], now).await?;
            let Selection { yes, dry_run, .. } = selection;
            let retention = retention(&deployment)?;
            let plans = admin.reprocess(&ids, false, retention, now).await?;
            let report = |done: &[payhooks::pipeline::Reprocessed], verb: &str| {
                let mut table = new_table(&["quarantine", &format!("events it {verb}"), "still quarantined"]);
                for r in done {
                    let events: Vec<String> = r.events.iter().map(|(id, kind)| format!("{id} ({kind})")).collect();
                    let still: Vec<String> =
                        r.still_quarantined.iter().map(|(id, why)| format!("{id} ({why})")).collect();
                    table.add_row(vec![r.quarantine_id.clone(), events.join("\n"), still.join("\n")]);
                }
                table.to_string()
            };
            if dry_run {
                return print(out, json, &plans, || report(&plans, "would yield"));
            }
            let yielding = plans.iter().map(|p| p.events.len()).sum::<usize>();
            if !yes && !confirm(&format!("Record and send the {yielding} event(s) of {} quarantine(s)?", plans.len())) {
                return Err("not confirmed: nothing written".into());
            }
            let done = admin.reprocess(&ids, true, retention, now).await?;
            print(out, json, &done, || {
                let accepted: u32 = done.iter().filter_map(|d| d.counts).map(|c| c.accepted).sum();
                let duplicate: u32 = done.iter().filter_map(|d| d.counts).map(|c| c.duplicate).sum();
                format!("{}\nsent {accepted} new event(s); {duplicate} already sent", report(&done, "yields"))
            })
        }
        Command::Redrive { provider } => {
            let done = admin(&sdk, &deployment, &[provider])?.redrive(provider).await?;
            print(out, json, &done, || {
                format!("{}: moved {} message(s) back ({})", done.provider, done.moved, done.method)
            })
        }
        Command::DeployConfig { arch, out: dir } => {
            if deployment.stack_name().is_none() {
                return Err("deploy-config reads a deployed stack: give --stack NAME (make deploy creates it)".into());
            }
            let configs = deploy::function_configs(&deployment)?;
            let running = configs.first().map(|c| c.architecture.clone()).unwrap_or_default();
            if running != arch {
                return Err(format!(
                    "the stack's functions run {running} and the binaries are {arch}: build with ARCH={running} \
                     (make build BUILD=cargo-lambda ARCH={running}), or redeploy the stack with ARCH={arch}"
                )
                .into());
            }
            deploy::write(&configs, &dir)?;
            print(out, json, &configs, || {
                format!("wrote {} function configuration(s) to {}", configs.len(), dir.display())
            })
        }
        Command::Verify { provider, file, headers, path } => {
            let body = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let config = function_config(&sdk, &deployment, provider).await?;
            let loader = payhooks::aws::SsmSecrets::new(
                payhooks::aws::SsmClient::new(&sdk),
                config.secrets,
                config.signing_keys,
            );
            let secrets = loader.load().await?;
            let result = verify(provider, &config.verify, &secrets, &body, &headers, path.as_deref(), now)?;
            print(out, json, &result, || {
                let mut out = format!("payhooks would answer {}", result.status);
                if let Some(error) = &result.error {
                    out.push_str(&format!(" ({error})"));
                }
                if let Some(scheme) = &result.scheme {
                    out.push_str(&format!("\nverified by {scheme}, secret index {}", result.secret_index.unwrap_or(0)));
                }
                if let Some(dialect) = &result.dialect {
                    out.push_str(&format!(", dialect {dialect}"));
                }
                for e in &result.events {
                    out.push_str(&format!("\nevent {e}"));
                }
                for q in &result.quarantined {
                    out.push_str(&format!("\nquarantined {q}"));
                }
                for (dialect, signed) in &result.canonical {
                    out.push_str(&format!(
                        "\n{dialect:<10} {}",
                        signed.as_deref().unwrap_or("(cannot write this body exactly)")
                    ));
                }
                if let Some(settings) = &result.would_pass_with {
                    out.push_str(&format!("\nit would verify with {settings}"));
                }
                out
            })?;
            // A refusal is the answer a script must not take for a pass.
            if !result.accepted() {
                return Err(Refused::new(format!("payhooks would refuse this callback with {}", result.status)).into());
            }
            Ok(())
        }
    }
}

/// The exit code of a command's result, the error (with its causes) written to `err`: 0 done, 1 the answer is
/// no, 2 the command could not run.
pub fn exit_code(result: &Result<(), Error>, err: &mut dyn Write) -> u8 {
    match result {
        Ok(()) => 0,
        Err(e) if e.is::<Refused>() => {
            let _ = writeln!(err, "payhooks-admin: {e}");
            1
        }
        Err(e) => {
            let _ = writeln!(err, "payhooks-admin: {}", chain(e.as_ref()));
            2
        }
    }
}

/// A command's answer is "no" (`verify`: payhooks would refuse the callback; `doctor`: a check failed). Its
/// report is printed already; the exit code is 1, where an error running the command is 2.
#[derive(Debug)]
struct Refused(String);

impl Refused {
    fn new(why: String) -> Self {
        Self(why)
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}
