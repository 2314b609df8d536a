//! `payhooks-send`: sign a fixture the way its provider would and POST it to a running payhooks function,
//! like `stripe trigger`. Used by `make send`, `make demo` and `make dev`.
//!
//! ```text
//! payhooks-send --provider niobi --fixture tests/fixtures/niobi/payin_timeout.json [--forge] [--expect 200]
//! payhooks-send --list        # every provider and its route: the list scripts derive from
//! payhooks-send --load 1000 20 30 expected.txt   # the local load test (make loadtest)
//! ```
//! Reads `PAYHOOKS_URL` (e.g. `http://127.0.0.1:9000/lambda-url`), `<PROVIDER>_WEBHOOK_SECRETS` or
//! `WEBHOOK_SECRETS` (the first value signs) and, for Niobi, `NIOBI_SIGNATURE_HASH`.

use std::process::ExitCode;
use std::time::Duration;

use payhooks::config::provider_overrides;
use payhooks::providers::{self, SignOptions};
use payhooks::verify::{CanonicalHash, Secret, SecretSet};
use payhooks::Provider;

const USAGE: &str = "usage: payhooks-send --provider <niobi|choice|m2money|lipia|muda> --fixture <file.json> [--forge] [--expect <status>] [--url <base>]\n       payhooks-send --list";

/// `--list`: one line per provider, `name<TAB>route`, from `Provider::ALL`.
fn list() {
    for provider in Provider::ALL {
        println!("{provider}\t{}", providers::route(provider).pattern(provider));
    }
}

struct Args {
    provider: Provider,
    fixture: String,
    forge: bool,
    expect: Option<u16>,
    url: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut provider, mut fixture, mut forge, mut expect, mut url) = (None, None, false, None, None);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--provider" => provider = Some(value()?.parse::<Provider>().map_err(|e| e.to_string())?),
            "--fixture" => fixture = Some(value()?),
            "--forge" => forge = true,
            "--expect" => expect = Some(value()?.parse::<u16>().map_err(|e| format!("--expect: {e}"))?),
            "--url" => url = Some(value()?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        provider: provider.ok_or("--provider is required")?,
        fixture: fixture.ok_or("--fixture is required")?,
        forge,
        expect,
        url,
    })
}

fn run(args: Args) -> Result<bool, String> {
    let env = provider_overrides(args.provider, |name| std::env::var(name).ok());
    let base = args.url.or_else(|| env("PAYHOOKS_URL")).ok_or("set PAYHOOKS_URL (or --url): run `make dev` first")?;
    let secrets = env("WEBHOOK_SECRETS").ok_or("set <PROVIDER>_WEBHOOK_SECRETS or WEBHOOK_SECRETS")?;
    let secret = SecretSet::parse(&secrets, "WEBHOOK_SECRETS").map_err(|e| e.to_string())?.current().clone();
    let secret = if args.forge { Secret::new(format!("forged-{}", secret.expose())) } else { secret };
    let niobi_hash =
        env("NIOBI_SIGNATURE_HASH").and_then(|h| CanonicalHash::parse(&h)).unwrap_or(CanonicalHash::Sha256);
    let body = std::fs::read_to_string(&args.fixture).map_err(|e| format!("{}: {e}", args.fixture))?;
    let signed = providers::sign(
        args.provider,
        &body,
        &secret,
        &SignOptions { niobi_hash, ..Default::default() },
        chrono::Utc::now(),
    )
    .map_err(|e| format!("{}: {e}", args.fixture))?;

    // `cargo lambda watch` serves each binary at <base>/<binary>/<rest of path>: the route minus `/webhooks`.
    let path = signed.path(args.provider);
    let url = format!("{}{}", base.trim_end_matches('/'), path.trim_start_matches("/webhooks"));
    // The first request to a function under `cargo lambda watch` compiles it: allow for that.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into();
    let mut request = agent.post(&url).header("content-type", "application/json");
    for (name, value) in &signed.headers {
        request = request.header(name, value);
    }
    let mut response = request.send(signed.body.as_str()).map_err(|e| format!("POST {url}: {e}"))?;
    let status = response.status().as_u16();
    let answer = response.body_mut().read_to_string().unwrap_or_default();
    let name =
        std::path::Path::new(&args.fixture).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let label = if args.forge { format!("{name} (forged)") } else { name };
    let ok = args.expect.is_none_or(|want| want == status);
    println!(
        "{:<8} {:<34} -> {status} {answer}{}",
        args.provider.name(),
        label,
        if ok { "" } else { "   <-- unexpected" }
    );
    Ok(ok)
}

mod load;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--list") {
        list();
        return ExitCode::SUCCESS;
    }
    if argv.get(1).map(String::as_str) == Some("--load") {
        // payhooks-send --load <total> <concurrency> <duplicate %> <expected-ids file>
        let number = |i: usize| argv.get(i).and_then(|v| v.parse::<usize>().ok());
        let (Some(total), Some(concurrency), Some(dup), Some(file)) = (number(2), number(3), number(4), argv.get(5))
        else {
            eprintln!("usage: payhooks-send --load <total> <concurrency> <duplicate %> <expected-ids file>");
            return ExitCode::from(2);
        };
        return match load::load(total, concurrency, dup.min(90), file) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("payhooks-send: {e}");
                ExitCode::from(2)
            }
        };
    }
    match parse_args().and_then(run) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("payhooks-send: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
