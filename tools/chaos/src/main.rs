//! `payhooks-chaos`: the crash-and-fault soak (`make chaos`). Thin: the command line, then [`soak::run`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use payhooks_chaos::soak::{self, Settings};
use payhooks_chaos::traffic::Mix;

/// Drive the real functions and moto through a fault proxy, crash the functions at random, and audit the
/// queues: exits non-zero on any loss, unexplained extra, wrong transaction state or record left RECEIVED.
/// Run it through `make chaos`, which builds the functions and starts moto.
#[derive(Parser)]
#[command(name = "payhooks-chaos")]
struct Args {
    /// Callbacks to send.
    #[arg(long, default_value_t = 10_000)]
    callbacks: usize,
    /// The seed of the traffic, the faults and the crashes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Percent of the callbacks sent again (half the same bytes, half re-encoded and re-signed).
    #[arg(long, default_value_t = 30)]
    repeat_pct: u32,
    /// Percent of the transactions sent as an authentic body that cannot be normalised.
    #[arg(long, default_value_t = 3)]
    quarantine_pct: u32,
    /// The share of AWS calls that get a fault (a 500, a throttle, a timeout, applied but lost).
    #[arg(long, default_value_t = 0.10)]
    fault_rate: f64,
    /// About one crash per this many callbacks.
    #[arg(long, default_value_t = 300)]
    crash_every: u64,
    /// Callbacks in flight at once.
    #[arg(long, default_value_t = 24)]
    concurrency: usize,
    /// Processes per provider function.
    #[arg(long, default_value_t = 4)]
    instances: usize,
    /// The providers' retry waits are multiplied by this.
    #[arg(long, default_value_t = 0.1)]
    time_scale: f64,
    /// Seconds between sweeps (a minute in the template).
    #[arg(long, default_value_t = 2)]
    sweep_every: u64,
    /// The functions' timeout in seconds (the template's).
    #[arg(long, default_value_t = 10)]
    function_timeout: u64,
    /// Where the function binaries are.
    #[arg(long, default_value = "target/debug")]
    bin_dir: PathBuf,
    /// Where the functions' logs and the history go.
    #[arg(long, default_value = "target/chaos")]
    out: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let settings = Settings {
        mix: Mix { callbacks: args.callbacks, repeat_pct: args.repeat_pct, quarantine_pct: args.quarantine_pct },
        seed: args.seed,
        fault_rate: args.fault_rate,
        crash_every: args.crash_every,
        concurrency: args.concurrency,
        instances: args.instances,
        time_scale: args.time_scale,
        sweep_every: Duration::from_secs(args.sweep_every),
        function_timeout: Duration::from_secs(args.function_timeout),
        bin_dir: args.bin_dir,
        out_dir: args.out.join(format!("seed-{}", args.seed)),
    };
    match soak::run(&settings).await {
        Ok(report) => {
            for line in &report.lines {
                println!("{line}");
            }
            let history = settings.out_dir.join("history.jsonl");
            if !report.findings.explained_extra.is_empty() {
                println!("explained extra (the first few; every one is in the history):");
                report.findings.print_copies(&report.findings.explained_extra);
            }
            if report.findings.passed() {
                println!("chaos: passed (history: {})", history.display());
                ExitCode::SUCCESS
            } else {
                report.findings.print_failures();
                println!(
                    "chaos: FAILED. The seed and history: {} (replay: payhooks-chaos --seed {} --callbacks {}, under make chaos)",
                    history.display(),
                    settings.seed,
                    settings.mix.callbacks
                );
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("payhooks-chaos: {e}");
            ExitCode::from(2)
        }
    }
}
