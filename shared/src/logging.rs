//! The functions' log lines, as Lambda's advanced logging controls ask: the level from
//! `AWS_LAMBDA_LOG_LEVEL` (else `RUST_LOG`, a level name; else `INFO`), one JSON object per line when
//! `AWS_LAMBDA_LOG_FORMAT` is `JSON`, no timestamp (Lambda adds its own). The same as `lambda_http`'s
//! `tracing` feature without its per-target filter, which would link a regex engine into every function.

use std::str::FromStr;

use tracing_subscriber::filter::LevelFilter;

/// Install the subscriber for the process (once, first thing in `main`).
pub fn init() {
    let env = |name: &str| std::env::var(name).ok();
    let builder = tracing_subscriber::fmt().with_target(false).without_time().with_max_level(level(env));
    if json(env) {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The most verbose level logged: `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else `INFO` (also when the value
/// is not a level name).
fn level(env: impl Fn(&str) -> Option<String>) -> LevelFilter {
    env("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|| env("RUST_LOG"))
        .and_then(|value| LevelFilter::from_str(value.trim()).ok())
        .unwrap_or(LevelFilter::INFO)
}

fn json(env: impl Fn(&str) -> Option<String>) -> bool {
    env("AWS_LAMBDA_LOG_FORMAT").is_some_and(|format| format.trim().eq_ignore_ascii_case("json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with<'a>(vars: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn lambda_controls_come_first() {
        assert_eq!(level(with(&[])), LevelFilter::INFO);
        assert_eq!(level(with(&[("RUST_LOG", "debug")])), LevelFilter::DEBUG);
        assert_eq!(level(with(&[("AWS_LAMBDA_LOG_LEVEL", "WARN"), ("RUST_LOG", "debug")])), LevelFilter::WARN);
        assert_eq!(level(with(&[("RUST_LOG", "payhooks=debug")])), LevelFilter::INFO);
        assert!(json(with(&[("AWS_LAMBDA_LOG_FORMAT", "JSON")])) && !json(with(&[("AWS_LAMBDA_LOG_FORMAT", "Text")])));
    }
}
