//! The command line itself: `--help` on every command, and arguments checked before any AWS call.

use std::process::Command;

fn admin(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_payhooks-admin"))
        .args(args)
        .env_clear()
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn every_command_has_help() {
    for command in ["urls", "doctor", "inspect", "list", "replay", "reprocess", "redrive", "verify", "deploy-config"] {
        let (ok, text) = admin(&[command, "--help"]);
        assert!(ok && text.contains("Usage: payhooks-admin"), "{command}: {text}");
    }
    let (_, text) = admin(&["--help"]);
    assert!(text.contains("--json") && text.contains("--stack"));
}

#[test]
fn bad_arguments_are_named() {
    let (ok, text) = admin(&["list", "--provider", "stripe", "--state", "RECEIVED"]);
    assert!(!ok && text.contains("unknown provider `stripe`"), "{text}");
    let (ok, text) = admin(&["list", "--provider", "niobi", "--state", "LOST"]);
    assert!(!ok && text.contains("expected RECEIVED, ENQUEUED"), "{text}");
    let (ok, text) = admin(&["inspect", "x"]);
    assert!(!ok && text.contains("missing EVENTS_TABLE: give --stack NAME"), "{text}");
    assert!(text.contains("set -a; . target/local/demo.env; set +a"), "where the local stack's are: {text}");
    // Everything a command needs and lacks, at once.
    let (ok, text) = admin(&["replay", "niobi:payin:A:000000", "lipia:stk:B", "--dry-run"]);
    assert!(!ok && text.contains("missing EVENTS_TABLE, NIOBI_EVENTS_QUEUE_URL, LIPIA_EVENTS_QUEUE_URL"), "{text}");
    let (ok, text) = admin(&["deploy-config", "--arch", "x86_64", "--out", "/tmp/x"]);
    assert!(!ok && text.contains("give --stack NAME"), "{text}");
}

/// `verify` exits 0 when payhooks would acknowledge the callback and 1 when it would refuse it, so a script
/// can tell (Lipia: the URL token is the whole credential).
#[test]
fn verify_exits_non_zero_on_a_refusal() {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/lipia/stk_success.json");
    let run = |path: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_payhooks-admin"))
            .args(["verify", "--provider", "lipia", "--file", fixture, "--path", path])
            .env("WEBHOOK_SECRETS", "the-token")
            .env("EVENTS_TABLE", "unused")
            .env("EVENTS_QUEUE_URL", "http://127.0.0.1:9/unused")
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, text) = run("/webhooks/lipia/the-token");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("payhooks would answer 200"), "{text}");
    let (code, text) = run("/webhooks/lipia/another-token");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("payhooks would answer 401 (invalid_token)"), "{text}");
}
