//! `payhooks-admin`: the operator tool. Reads the same environment as the functions (`EVENTS_TABLE`, each
//! `<PROVIDER>_EVENTS_QUEUE_URL`, and for `verify` the provider's secrets), so `AWS_ENDPOINT_URL` points it
//! at moto like everything else. `--help` on every command; tables by default, JSON with `--json`.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::process::ExitCode;

use chrono::Utc;
use clap::{Parser, Subcommand};
use payhooks::config::{provider_overrides, Config, SweeperConfig};
use payhooks::ports::{RecordState, SecretLoader};
use payhooks::Provider;
use payhooks_admin::{since, table, verify, Admin, Error};

#[derive(Parser)]
#[command(
    name = "payhooks-admin",
    about = "Inspect, list, replay and redrive payhooks events; verify a captured callback"
)]
struct Cli {
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show an event's record (state, times, scheme, secret index, content hash), its transaction state and
    /// any conflict records. Quarantine ids (`<provider>:quarantined:<hash>`) work too.
    Inspect {
        /// The event id, e.g. niobi:payin:A7KQ2M9XW001:000000
        id: String,
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
        /// Event ids to replay.
        ids: Vec<String>,
        /// Replay everything this provider sent since --since (a scan).
        #[arg(long, requires = "since")]
        provider: Option<Provider>,
        #[arg(long)]
        since: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// Show what would be sent, and send nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Move every message from a provider's dead-letter queue back to its queue.
    Redrive {
        #[arg(long)]
        provider: Provider,
    },
    /// Run a provider's authentication and normalisation on a captured callback with the configured secrets,
    /// and print what payhooks would do (for a 401 from Choice or Niobi: each dialect's signed string, the
    /// secret masked, and the setting that would verify it). Exits 1 when payhooks would refuse it.
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
async fn operator_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(payhooks::aws::https_client(payhooks::config::TlsRoots::System))
        .load()
        .await
}

async fn admin() -> Result<Admin, Error> {
    let config = SweeperConfig::from_env()?;
    let sdk = operator_sdk_config().await;
    let queues: HashMap<Provider, String> = config.queue_urls.into_iter().collect();
    Ok(Admin::new(aws_sdk_dynamodb::Client::new(&sdk), aws_sdk_sqs::Client::new(&sdk), config.events_table, queues))
}

fn print(json: bool, value: &impl serde::Serialize, text: impl FnOnce() -> String) -> Result<(), Error> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        println!("{}", text());
    }
    Ok(())
}

fn confirm(question: &str) -> bool {
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).is_ok() && answer.trim().eq_ignore_ascii_case("y")
}

async fn run(cli: Cli) -> Result<(), Error> {
    let json = cli.json;
    match cli.command {
        Command::Inspect { id } => {
            let found = admin().await?.inspect(&id).await?;
            print(json, &found, || {
                let mut out = table(&found.record);
                if let Some(t) = &found.transaction {
                    out.push_str(&format!("\n\ntransaction\n{}", table(t)));
                }
                for c in &found.conflicts {
                    out.push_str(&format!("\n\nconflict\n{}", table(c)));
                }
                out
            })
        }
        Command::List { provider, state, since: window } => {
            let from = window.map(|w| since(&w, Utc::now())).transpose()?;
            let records = admin().await?.list(provider, state, from).await?;
            print(json, &records, || {
                let mut lines: Vec<String> = records
                    .iter()
                    .map(|r| {
                        let get = |k: &str| r.get(k).and_then(|v| v.as_str()).unwrap_or("-").to_owned();
                        format!("{:<64}  {:<11}  {:<40}  {}", get("pk"), get("state"), get("type"), get("received_at"))
                    })
                    .collect();
                lines.push(format!("{} record(s)", records.len()));
                lines.join("\n")
            })
        }
        Command::Replay { ids, provider, since: window, yes, dry_run } => {
            let admin = admin().await?;
            let now = Utc::now();
            let mut ids = ids;
            if let (Some(provider), Some(window)) = (provider, window) {
                ids.extend(admin.sent_since(provider, since(&window, now)?).await?);
            }
            if ids.is_empty() {
                return Err("nothing to replay: give event ids, or --provider and --since".into());
            }
            let mut plans = Vec::new();
            for id in &ids {
                plans.push(admin.replay_plan(id, now).await?);
            }
            if dry_run {
                return print(json, &plans, || {
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
            print(json, &plans.iter().map(|p| &p.id).collect::<Vec<_>>(), || {
                format!("replayed {} event(s)", plans.len())
            })
        }
        Command::Redrive { provider } => {
            let done = admin().await?.redrive(provider).await?;
            print(json, &done, || format!("{}: moved {} message(s) back ({})", done.provider, done.moved, done.method))
        }
        Command::Verify { provider, file, headers, path } => {
            let body = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let config = Config::from_lookup(provider, provider_overrides(provider, |n| std::env::var(n).ok()))?;
            let sdk = operator_sdk_config().await;
            let loader = payhooks::aws::SsmSecrets::new(
                payhooks::aws::SsmClient::new(&sdk),
                config.secrets,
                config.signing_keys,
            );
            let secrets = loader.load().await?;
            let result = verify(provider, &config.verify, &secrets, &body, &headers, path.as_deref(), Utc::now())?;
            print(json, &result, || {
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
                return Err(Refused(result.status).into());
            }
            Ok(())
        }
    }
}

/// `verify`: payhooks would refuse the callback (the report is printed already).
#[derive(Debug)]
struct Refused(u16);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "payhooks would refuse this callback with {}", self.0)
    }
}

impl std::error::Error for Refused {}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<Refused>() => {
            eprintln!("payhooks-admin: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("payhooks-admin: {e}");
            ExitCode::from(2)
        }
    }
}
