//! The command line itself: `--help` on every command, and arguments checked before any AWS call.

use std::process::Command;

fn admin(args: &[&str]) -> (bool, String) {
    let out =
        Command::new(env!("CARGO_BIN_EXE_payhooks-admin")).args(args).env_remove("EVENTS_TABLE").output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn every_command_has_help() {
    for command in ["inspect", "list", "replay", "redrive", "verify"] {
        let (ok, text) = admin(&[command, "--help"]);
        assert!(ok && text.contains("Usage: payhooks-admin"), "{command}: {text}");
    }
    let (_, text) = admin(&["--help"]);
    assert!(text.contains("--json"));
}

#[test]
fn bad_arguments_are_named() {
    let (ok, text) = admin(&["list", "--provider", "stripe", "--state", "RECEIVED"]);
    assert!(!ok && text.contains("unknown provider `stripe`"), "{text}");
    let (ok, text) = admin(&["list", "--provider", "niobi", "--state", "LOST"]);
    assert!(!ok && text.contains("expected RECEIVED, ENQUEUED"), "{text}");
    let (ok, text) = admin(&["inspect", "x"]);
    assert!(!ok && text.contains("is not set"), "configuration is read like the functions': {text}");
}
