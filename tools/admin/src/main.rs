//! `payhooks-admin`: the operator tool (`payhooks_admin::cli`). Exit codes: 0 done, 1 the answer is no
//! (`verify` refuses, `doctor` fails), 2 the command could not run.

use std::process::ExitCode;

use clap::Parser;
use payhooks_admin::cli::{exit_code, operator_sdk_config, run, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let sdk = operator_sdk_config().await;
    let result = run(cli, &sdk, &mut std::io::stdout()).await;
    ExitCode::from(exit_code(&result, &mut std::io::stderr()))
}
