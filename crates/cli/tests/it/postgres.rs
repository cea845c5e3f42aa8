//! The same commands on PostgreSQL, chosen by a `postgres://` URL, in a database of its own on
//! the server named by `REGAIN_TEST_POSTGRES_URL` (the test command sets it).

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection as _;

use crate::Sandbox;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Creates an empty database `regain_t_cli_<pid>_<n>` (the test command drops leftovers of the
/// `regain_t_` prefix) and returns its URL.
fn fresh_database() -> String {
    let admin_url = std::env::var("REGAIN_TEST_POSTGRES_URL")
        .expect("REGAIN_TEST_POSTGRES_URL must name a PostgreSQL server (the README's test command sets it)");
    let name = format!("regain_t_cli_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect to REGAIN_TEST_POSTGRES_URL");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create test database");
        admin.close().await.ok();
    });
    let (base, _) = admin_url.rsplit_once('/').expect("URL with a database path");
    format!("{base}/{name}")
}

#[test]
fn the_commands_work_on_postgres_and_never_show_its_credentials() {
    let url = fresh_database();
    let sandbox = Sandbox::new();
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut cmd = sandbox.command(args);
        cmd.env("REGAIN__DATABASE__URL", &url);
        sandbox.run_with(cmd, stdin)
    };

    let run_migrate = run(&["migrate"], None).expect_code(0);
    let out = run_migrate.stdout();
    assert!(
        out.contains(&format!("applied {} migration", crate::migrations_count())) && out.contains("0 pending"),
        "{out}"
    );
    assert!(out.contains("postgres://127.0.0.1:5432/regain_t_cli_"), "{out}");
    assert!(!out.contains('@') && !run_migrate.stderr().contains('@'), "credentials shown:\n{out}");

    run(&["tenant", "create", "--slug", "acme", "--name", "ACME Bank"], None).expect_code(0);
    let secret = run(&["apikey", "create", "--tenant", "acme", "--name", "crm"], None).expect_code(0).stdout();
    assert!(secret.starts_with("rgk_"), "{secret}");
    run(
        &[
            "staff",
            "create",
            "--tenant",
            "acme",
            "--email",
            "ana@acme.example.com",
            "--name",
            "Ana",
            "--role",
            "supervisor",
            "--password-stdin",
        ],
        Some("a-long-enough-password\n"),
    )
    .expect_code(0);

    let file = sandbox.file(
        "c.csv",
        "username,full_name,email,phone\nann,Ann Ávila,ann@example.com,201-555-0120\nbo,Bo,bo@example.com,\nann,Ann Again,,\n",
    );
    let run_import = run(&["customer", "import", "--tenant", "acme", file.to_str().unwrap()], None).expect_code(2);
    assert!(run_import.stdout().contains("2 imported, 1 failed"), "{}", run_import.stdout());
    assert!(run_import.stderr().contains("line 4: username: is already in use"), "{}", run_import.stderr());
}
