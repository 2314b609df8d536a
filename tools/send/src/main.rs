//! `payhooks-send`: sign a callback body the way its provider would and POST it to payhooks, like
//! `stripe trigger`. Used by `make send`, `make demo`, `make dev` and `make loadtest`; with `--url`, a smoke
//! test of a deployed stack.
//!
//! Reads `PAYHOOKS_URL` (the local stack, e.g. `http://127.0.0.1:9000/lambda-url`), `<PROVIDER>_WEBHOOK_SECRETS`
//! or `WEBHOOK_SECRETS` (the first value signs) and, for Niobi, `NIOBI_SIGNATURE_HASH`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use payhooks::config::provider_overrides;
use payhooks::providers;
use payhooks::signing::{self, SignOptions};
use payhooks::verify::{Secret, SecretSet};
use payhooks::Provider;

mod body;
mod load;

#[derive(Parser)]
#[command(
    name = "payhooks-send",
    about = "Sign a callback as its provider would and POST it to payhooks",
    after_help = "Examples:\n  \
        payhooks-send --provider niobi --fixture payin_timeout\n  \
        payhooks-send --provider choice --fixture tests/fixtures/choice/deposit_success.json --set amount=250.00\n  \
        payhooks-send --provider lipia --file captured.json --url https://abc.execute-api.eu-west-1.amazonaws.com\n\n\
        Secrets: <PROVIDER>_WEBHOOK_SECRETS or WEBHOOK_SECRETS (the first value signs; for Lipia and MUDA it is \
        the URL token). `make dev` writes the local ones to target/local/demo.env."
)]
struct Cli {
    #[arg(long, required_unless_present_any = ["list", "load"])]
    provider: Option<Provider>,
    /// A fixture: its name in tests/fixtures/<provider>/ (e.g. payin_timeout), or a path to one.
    #[arg(long, conflicts_with = "file")]
    fixture: Option<String>,
    /// Any body file, sent as it is (before --set).
    #[arg(long)]
    file: Option<std::path::PathBuf>,
    /// Change one value before signing: a dotted path to a value the body has (`amount`, `data.status`,
    /// `items.0.txStatus`) and its new value. A string stays a string; anything else is written as given.
    /// Repeatable.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    sets: Vec<String>,
    /// Sign with a wrong secret (expect 401).
    #[arg(long)]
    forge: bool,
    /// Exit 1 unless payhooks answers this status.
    #[arg(long)]
    expect: Option<u16>,
    /// A deployed stack's API base URL (`payhooks-admin --stack NAME urls` prints it): the request goes to
    /// <URL>/webhooks/<provider>[/<token>]. Default: PAYHOOKS_URL, the local stack.
    #[arg(long)]
    url: Option<String>,
    /// Print every provider and its route, one `name<TAB>route` a line (the list scripts derive from).
    #[arg(long)]
    list: bool,
    /// The local load test: TOTAL callbacks at CONCURRENCY with DUPLICATE% re-sent; the expected event ids
    /// are written to FILE (`make loadtest`).
    #[arg(long, num_args = 4, value_names = ["TOTAL", "CONCURRENCY", "DUPLICATE%", "FILE"])]
    load: Option<Vec<String>>,
}

/// The request went out and was answered; `Ok(false)` when the answer was not the expected one.
fn send(cli: Cli) -> Result<bool, String> {
    let provider = cli.provider.ok_or("--provider is required")?;
    let env = provider_overrides(provider, |name| std::env::var(name).ok());
    let (path, mut body) = match (&cli.fixture, &cli.file) {
        (Some(name), None) => {
            let path = if name.ends_with(".json") || name.contains('/') {
                std::path::PathBuf::from(name)
            } else {
                ["tests", "fixtures", provider.name(), &format!("{name}.json")].iter().collect()
            };
            let body = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            (path, body)
        }
        (None, Some(file)) => {
            (file.clone(), std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?)
        }
        _ => return Err("give a body: --fixture NAME or --file PATH".into()),
    };
    for set in &cli.sets {
        body = body::set(&body, set)?;
    }
    let secrets = env("WEBHOOK_SECRETS").ok_or(format!(
        "set {}_WEBHOOK_SECRETS (or WEBHOOK_SECRETS) to the provider's secret: for the `make dev` stack, \
         `set -a; . target/local/demo.env; set +a`",
        provider.name().to_ascii_uppercase()
    ))?;
    let secret = SecretSet::parse(&secrets, "WEBHOOK_SECRETS").map_err(|e| e.to_string())?.current().clone();
    let secret = if cli.forge { Secret::new(format!("forged-{}", secret.expose())) } else { secret };
    let options = SignOptions::from_lookup(provider, &env);
    let signed = signing::sign(provider, &body, &secret, &options, chrono::Utc::now())
        .map_err(|e| format!("{}: {e}", path.display()))?;

    let route = signed.path(provider);
    let url = match &cli.url {
        Some(base) => format!("{}{route}", base.trim_end_matches('/')),
        // `cargo lambda watch` serves each binary at <base>/<binary>/<rest of path>: the route minus `/webhooks`.
        None => {
            let base = env("PAYHOOKS_URL").ok_or(
                "set PAYHOOKS_URL (start the local stack with `make dev`), or give --url for a deployed stack",
            )?;
            format!("{}{}", base.trim_end_matches('/'), route.trim_start_matches("/webhooks"))
        }
    };
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
    let shown = |url: &str| match providers::route(provider) {
        providers::Route::Token => url.replace(secret.expose(), "****"),
        providers::Route::Plain => url.to_owned(),
    };
    let mut response = request.send(signed.body.as_str()).map_err(|e| match e {
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("nothing answers at {}: is the stack running? (`make dev` starts the local one)", shown(&url))
        }
        other => format!("POST {}: {other}", shown(&url)),
    })?;
    let status = response.status().as_u16();
    let answer = response.body_mut().read_to_string().unwrap_or_default();
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let label = match (cli.forge, cli.sets.is_empty()) {
        (true, _) => format!("{name} (forged)"),
        (false, false) => format!("{name} (changed)"),
        (false, true) => name,
    };
    let ok = cli.expect.is_none_or(|want| want == status);
    println!("{:<8} {:<34} -> {status} {answer}{}", provider.name(), label, if ok { "" } else { "   <-- unexpected" });
    Ok(ok)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = if cli.list {
        for provider in Provider::ALL {
            println!("{provider}\t{}", providers::route(provider).pattern(provider));
        }
        Ok(true)
    } else if let Some(load) = &cli.load {
        let number = |i: usize, what: &str| {
            load[i].parse::<usize>().map_err(|_| format!("--load {what}: {}: expected a number", load[i]))
        };
        (|| load::load(number(0, "TOTAL")?, number(1, "CONCURRENCY")?, number(2, "DUPLICATE%")?.min(90), &load[3]))()
    } else {
        send(cli)
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("payhooks-send: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    #[test]
    fn help_is_help_and_bad_arguments_are_named() {
        let help = Cli::try_parse_from(["payhooks-send", "--help"]).err().unwrap();
        assert_eq!(help.kind(), ErrorKind::DisplayHelp);
        let text = help.to_string();
        assert!(text.contains("--set <PATH=VALUE>") && text.contains("--url") && text.contains("Examples"), "{text}");
        let err = Cli::try_parse_from(["payhooks-send", "--provider", "stripe", "--fixture", "x"]).err().unwrap();
        assert!(err.to_string().contains("unknown provider `stripe`"), "{err}");
        assert!(Cli::try_parse_from(["payhooks-send", "--fixture", "x"]).is_err(), "--provider is required");
        assert!(Cli::try_parse_from(["payhooks-send", "--list"]).is_ok());
        let load = Cli::try_parse_from(["payhooks-send", "--load", "10", "2", "30", "f.txt"]).unwrap();
        assert_eq!(load.load.unwrap(), ["10", "2", "30", "f.txt"]);
    }

    #[test]
    fn a_refused_connection_is_one_line_that_says_what_to_do() {
        // A port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        std::env::set_var("LIPIA_WEBHOOK_SECRETS", "the-token");
        let cli = Cli::try_parse_from([
            "payhooks-send",
            "--provider",
            "lipia",
            "--fixture",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/lipia/stk_success.json"),
            "--set",
            "response.ResultCode=1032",
            "--url",
            &format!("http://127.0.0.1:{port}"),
        ])
        .unwrap();
        let err = send(cli).unwrap_err();
        assert!(err.starts_with("nothing answers at http://127.0.0.1:"), "{err}");
        assert!(err.contains("/webhooks/lipia/****") && !err.contains("the-token"), "the token is masked: {err}");
        assert!(err.contains("make dev") && !err.contains('\n'), "{err}");
    }
}
