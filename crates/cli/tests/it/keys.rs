//! The master key for personal data (issue 3 item 5): created with a new database, proven at
//! every start, refused when wrong or missing (never replaced), rotated in place; and
//! `regain customer erase` (item 7).

use crate::admin::with_tenant;
use crate::Sandbox;

/// A well-formed key that is not this database's (base64 of 32 bytes of 7).
const OTHER_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
const JANE: &str = "username,full_name,email,phone\njane,Jane Doe,jane@example.com,+12015550123\n";

fn with_customer() -> Sandbox {
    let sandbox = with_tenant();
    let file = sandbox.file("jane.csv", JANE);
    let run = sandbox.run(&["customer", "import", "--tenant", "acme", file.to_str().unwrap()]).expect_code(0);
    assert!(run.stdout().contains("1 imported"), "{}", run.stdout());
    sandbox
}

/// Importing jane again: a duplicate, which proves she is found by her (blind-indexed) username.
fn jane_is_there(sandbox: &Sandbox) {
    let file = sandbox.file("again.csv", JANE);
    let err = sandbox.run(&["customer", "import", "--tenant", "acme", file.to_str().unwrap()]).expect_code(2).stderr();
    assert!(err.contains("already in use"), "{err}");
}

fn key_file(sandbox: &Sandbox) -> std::path::PathBuf {
    sandbox.path().join("data").join("master.key")
}

#[test]
fn a_new_database_gets_a_key_file_and_no_other_key_opens_it() {
    let sandbox = with_customer();
    let path = key_file(&sandbox);
    let key = std::fs::read_to_string(&path).expect("master.key was created");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let status = sandbox.run(&["keys", "status"]).expect_code(0).stdout();
    assert!(status.contains("database keyring: ") && status.contains("from the key file"), "{status}");

    // Another key, from the configuration: refused by name, nothing written.
    let joe = sandbox.file("joe.csv", "username,full_name\njoe,Joe\n");
    let mut cmd = sandbox.command(&["customer", "import", "--tenant", "acme", joe.to_str().unwrap()]);
    cmd.env("REGAIN__CRYPTO__MASTER_KEY", OTHER_KEY);
    let err = sandbox.run_with(cmd, None).expect_code(1).stderr();
    assert!(err.contains("not the key this database was written with") && err.contains("crypto.master_key"), "{err}");
    let mut cmd = sandbox.command(&["keys", "status"]);
    cmd.env("REGAIN__CRYPTO__MASTER_KEY", OTHER_KEY);
    sandbox.run_with(cmd, None).expect_code(2);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), key, "the key file is untouched");

    // No key at all over existing data: the server refuses to start rather than make one.
    std::fs::rename(&path, sandbox.path().join("elsewhere.key")).unwrap();
    let err = sandbox.run(&["serve"]).expect_code(1).stderr();
    assert!(err.contains("no key is configured") && err.contains("master.key"), "{err}");
    assert!(!path.exists(), "no new key was made");
    let err = sandbox.run(&["customer", "import", "--tenant", "acme", joe.to_str().unwrap()]).expect_code(1).stderr();
    assert!(err.contains("no key is configured"), "{err}");

    // Put back, everything is as it was.
    std::fs::rename(sandbox.path().join("elsewhere.key"), &path).unwrap();
    jane_is_there(&sandbox);
}

#[test]
fn rotation_replaces_the_key_and_keeps_every_record() {
    let sandbox = with_customer();
    let path = key_file(&sandbox);
    let old = std::fs::read_to_string(&path).unwrap();
    let out = sandbox.run(&["keys", "rotate"]).expect_code(0);
    assert!(out.stdout().contains("re-wrapped 1 data key(s)"), "{}", out.stdout());
    let new = std::fs::read_to_string(&path).unwrap();
    assert_ne!(old, new);
    let retired: Vec<_> = std::fs::read_dir(sandbox.path().join("data"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".retired"))
        .collect();
    assert_eq!(retired.len(), 1, "the old key is kept for old backups");
    assert!(!sandbox.path().join("data").join("master.key.new").exists());
    sandbox.run(&["keys", "status"]).expect_code(0);
    jane_is_there(&sandbox);
    // The old key opens nothing now.
    let mut cmd = sandbox.command(&["keys", "status"]);
    cmd.env("REGAIN__CRYPTO__MASTER_KEY", old.trim());
    sandbox.run_with(cmd, None).expect_code(2);
    // From the configuration, rotation needs somewhere to put the new key.
    let mut cmd = sandbox.command(&["keys", "rotate"]);
    cmd.env("REGAIN__CRYPTO__MASTER_KEY", new.trim());
    let err = sandbox.run_with(cmd, None).expect_code(1).stderr();
    assert!(err.contains("--out"), "{err}");
}

#[test]
fn customer_erase_confirms_erases_and_leaves_a_log_that_verifies() {
    let sandbox = with_customer();
    let missing = "0190f1f4-0000-7000-8000-000000000001";
    let err = sandbox.run(&["customer", "erase", "--tenant", "acme", missing]).expect_code(1).stderr();
    assert!(err.contains("--yes"), "{err}");
    let err = sandbox.run(&["customer", "erase", "--tenant", "acme", "--yes", "not-a-uuid"]).expect_code(1).stderr();
    assert!(err.contains("not a customer id"), "{err}");
    let err = sandbox.run(&["customer", "erase", "--tenant", "acme", "--yes", missing]).expect_code(1).stderr();
    assert!(err.contains("no such customer") || err.contains("not found"), "{err}");
    jane_is_there(&sandbox);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let jane: String = runtime.block_on(async {
        use sqlx::Connection as _;
        let path = sandbox.path().join("data").join("regain.db");
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.unwrap();
        sqlx::query_scalar("SELECT id FROM customers").fetch_one(&mut conn).await.unwrap()
    });
    let out = sandbox.run(&["customer", "erase", "--tenant", "acme", "--yes", &jane]).expect_code(0).stderr();
    assert!(out.contains("erased") && out.contains("still verifies"), "{out}");
    sandbox.run(&["customer", "erase", "--tenant", "acme", "--yes", &jane]).expect_code(1);
    // The log, with the erasure in it, verifies end to end; jane's identifiers are free again.
    sandbox.run(&["audit", "checkpoint"]).expect_code(0);
    let verified = sandbox.run(&["audit", "verify"]).expect_code(0).stdout();
    assert!(verified.contains("audit log verified"), "{verified}");
    let file = sandbox.file("again.csv", JANE);
    sandbox.run(&["customer", "import", "--tenant", "acme", file.to_str().unwrap()]).expect_code(0);
}
