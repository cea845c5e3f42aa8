//! Migrations, tenants, staff and API keys against a temporary SQLite database.

use crate::Sandbox;

/// A sandbox whose database is migrated.
pub fn migrated() -> Sandbox {
    let sandbox = Sandbox::new();
    let out = sandbox.run(&["migrate"]).expect_code(0).stdout();
    assert!(out.contains("0 pending"), "{out}");
    sandbox
}

/// A migrated sandbox with the tenant `acme`.
pub fn with_tenant() -> Sandbox {
    let sandbox = migrated();
    sandbox.run(&["tenant", "create", "--slug", "acme", "--name", "ACME Bank"]).expect_code(0);
    sandbox
}

#[test]
fn migrate_reports_applied_and_pending() {
    let sandbox = Sandbox::new();
    let before = sandbox.run(&["migrate", "--status"]).expect_code(0).stdout();
    assert!(before.contains("0 applied") && !before.contains(" 0 pending"), "{before}");
    let out = sandbox.run(&["migrate"]).expect_code(0).stdout();
    assert!(out.contains(&format!("applied {} migration", crate::migrations_count())), "{out}");
    let again = sandbox.run(&["migrate"]).expect_code(0).stdout();
    assert!(again.contains("applied 0 migration") && again.contains("0 pending"), "{again}");
    assert!(sandbox.path().join("data").join("regain.db").is_file());
}

#[test]
fn commands_refuse_a_database_that_is_not_migrated() {
    let sandbox = Sandbox::new();
    let err = sandbox.run(&["tenant", "create", "--slug", "acme", "--name", "ACME"]).expect_code(1).stderr();
    assert!(err.contains("regain migrate"), "{err}");
}

#[test]
fn tenant_create_prints_the_id_and_refuses_a_taken_slug() {
    let sandbox = migrated();
    let out = sandbox
        .run(&["tenant", "create", "--slug", "globex", "--name", "Globex", "--region", "GB"])
        .expect_code(0)
        .stdout();
    uuid::Uuid::parse_str(out.trim()).unwrap_or_else(|_| panic!("not an id: {out:?}"));
    let err = sandbox.run(&["tenant", "create", "--slug", "globex", "--name", "Again"]).expect_code(1).stderr();
    assert!(err.contains("slug is already in use"), "{err}");
    let err = sandbox.run(&["tenant", "create", "--slug", "Bad Slug", "--name", "X"]).expect_code(1).stderr();
    assert!(err.contains("slug"), "{err}");
}

#[test]
fn staff_create_reads_the_password_from_stdin_and_shows_the_totp_secret_once() {
    let sandbox = with_tenant();
    let run = sandbox
        .run_stdin(
            &[
                "staff",
                "create",
                "--tenant",
                "acme",
                "--email",
                "ana@acme.example.com",
                "--name",
                "Ana Agent",
                "--role",
                "agent",
                "--password-stdin",
            ],
            "a-long-enough-password\n",
        )
        .expect_code(0);
    let out = run.stdout();
    assert!(out.contains("shown once"), "{out}");
    let secret =
        out.lines().find_map(|l| l.trim().strip_prefix("secret")).map(str::trim).expect("a secret line").to_owned();
    assert!(
        out.contains(&format!("otpauth://totp/Regain%20%28ACME%20Bank%29:ana@acme.example.com?secret={secret}")),
        "{out}"
    );

    let code = sandbox.run(&["totp", &secret]).expect_code(0).stdout();
    assert!(code.trim().len() == 6 && code.trim().bytes().all(|b| b.is_ascii_digit()), "{code:?}");

    // The email is taken now; a short password is refused before anything is stored.
    let args = [
        "staff",
        "create",
        "--tenant",
        "acme",
        "--email",
        "ana@acme.example.com",
        "--name",
        "Ana",
        "--role",
        "agent",
        "--password-stdin",
    ];
    let err = sandbox.run_stdin(&args, "another-long-password\n").expect_code(1).stderr();
    assert!(err.contains("email is already in use"), "{err}");
    let mut short = args;
    short[5] = "bo@acme.example.com";
    let err = sandbox.run_stdin(&short, "short\n").expect_code(1).stderr();
    assert!(err.contains("password") && err.contains("12"), "{err}");
}

#[test]
fn staff_create_needs_a_terminal_or_password_stdin() {
    let sandbox = with_tenant();
    let err = sandbox
        .run(&[
            "staff",
            "create",
            "--tenant",
            "acme",
            "--email",
            "x@acme.example.com",
            "--name",
            "X",
            "--role",
            "agent",
        ])
        .expect_code(1)
        .stderr();
    assert!(err.contains("--password-stdin"), "{err}");
}

#[test]
fn a_deployment_admin_belongs_to_no_tenant() {
    let sandbox = migrated();
    let out = sandbox
        .run_stdin(
            &[
                "staff",
                "create",
                "--deployment",
                "--email",
                "ops@example.com",
                "--name",
                "Ops",
                "--role",
                "deployment_admin",
                "--password-stdin",
            ],
            "operator-password-1\n",
        )
        .expect_code(0)
        .stdout();
    assert!(out.contains("deployment_admin") && out.contains("Regain%20%28deployment%29"), "{out}");
    let err = sandbox
        .run_stdin(
            &[
                "staff",
                "create",
                "--deployment",
                "--email",
                "agent@example.com",
                "--name",
                "Agent",
                "--role",
                "agent",
                "--password-stdin",
            ],
            "operator-password-1\n",
        )
        .expect_code(1)
        .stderr();
    assert!(err.contains("tenant"), "{err}");
}

#[test]
fn apikey_create_prints_the_secret_once() {
    let sandbox = with_tenant();
    let run = sandbox.run(&["apikey", "create", "--tenant", "acme", "--name", "zendesk"]).expect_code(0);
    let secret = run.stdout();
    assert!(secret.trim().starts_with("rgk_") && secret.lines().count() == 1, "{secret:?}");
    assert!(run.stderr().contains("shown once"), "{}", run.stderr());
    let admin = sandbox
        .run(&["apikey", "create", "--tenant", "acme", "--name", "ops", "--role", "tenant_admin"])
        .expect_code(0)
        .stdout();
    assert_ne!(admin, secret);
    let err = sandbox.run(&["apikey", "create", "--tenant", "nope", "--name", "x"]).expect_code(1).stderr();
    assert!(err.contains("no tenant has the slug \"nope\""), "{err}");
}

#[test]
fn totp_refuses_what_is_not_base32() {
    let err = Sandbox::new().run(&["totp", "not base32!"]).expect_code(1).stderr();
    assert!(err.contains("base32"), "{err}");
}
