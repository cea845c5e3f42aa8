//! Every command and flag is documented in `--help`.

use crate::Sandbox;

#[test]
fn the_root_help_lists_every_command() {
    let run = Sandbox::new().run(&["--help"]).expect_code(0);
    let out = run.stdout();
    for name in [
        "serve",
        "migrate",
        "config",
        "tenant",
        "staff",
        "apikey",
        "customer",
        "totp",
        "demo",
        "--config",
        "REGAIN_CONFIG",
    ] {
        assert!(out.contains(name), "root help lacks {name}:\n{out}");
    }
}

#[test]
fn every_subcommand_help_names_its_flags() {
    let table: &[(&[&str], &[&str])] = &[
        (&["serve"], &["Usage: regain serve", "SIGTERM", "--config"]),
        (&["migrate"], &["--status"]),
        (&["config"], &["show"]),
        (&["config", "show"], &["TOML", "redacted"]),
        (&["tenant"], &["create"]),
        (&["tenant", "create"], &["--slug", "--name", "--region"]),
        (&["staff"], &["create"]),
        (&["staff", "create"], &["--tenant", "--deployment", "--email", "--name", "--role", "--password-stdin"]),
        (&["apikey"], &["create"]),
        (&["apikey", "create"], &["--tenant", "--name", "--role", "integration", "tenant_admin"]),
        (&["customer"], &["import"]),
        (
            &["customer", "import"],
            &["--tenant", "--format", "--report", "<FILE>", "csv", "jsonl", "recovery_codes_remaining"],
        ),
        (&["totp"], &["<SECRET>"]),
        (&["demo"], &["--listen", "--data-dir", "--fresh"]),
    ];
    let sandbox = Sandbox::new();
    for (command, expected) in table {
        let mut args = command.to_vec();
        args.push("--help");
        let out = sandbox.run(&args).expect_code(0).stdout();
        for word in *expected {
            assert!(out.contains(word), "`regain {}` help lacks {word}:\n{out}", command.join(" "));
        }
    }
}
