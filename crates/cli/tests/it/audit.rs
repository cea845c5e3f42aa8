//! `regain audit`: the log verifies, and any flipped bit in any stored entry, hash or
//! checkpoint — in the database or in an export — is reported (SECURITY.md L4).

use sqlx::{Connection as _, SqliteConnection};

use crate::admin::with_tenant;
use crate::Sandbox;

fn seeded() -> Sandbox {
    let sandbox = with_tenant();
    let rows: String = (0..6)
        .map(|n| format!("{{\"username\":\"user{n}\",\"full_name\":\"User {n}\",\"emails\":[{{\"address\":\"user{n}@example.com\"}}]}}\n"))
        .collect();
    let file = sandbox.file("customers.jsonl", &rows);
    sandbox.run(&["customer", "import", "--tenant", "acme", file.to_str().expect("path")]).expect_code(0);
    sandbox.run(&["audit", "checkpoint"]).expect_code(0);
    sandbox.run(&["tenant", "create", "--slug", "beta", "--name", "Beta"]).expect_code(0);
    let out = sandbox.run(&["audit", "checkpoint"]).expect_code(0).stdout();
    assert!(out.contains("the log has 8 entries"), "{out}");
    sandbox
}

fn flip(text: &str, at: usize) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let i = at % bytes.len();
    // Flip the lowest bit; stay printable ASCII so the row still reads as text.
    bytes[i] ^= 1;
    if !bytes[i].is_ascii_graphic() {
        bytes[i] ^= 3;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

async fn db(sandbox: &Sandbox) -> SqliteConnection {
    let path = sandbox.path().join("data").join("regain.db");
    SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.expect("open the database")
}

#[test]
fn the_log_verifies_and_every_tampering_in_the_database_is_reported() {
    let sandbox = seeded();
    let ok = sandbox.run(&["audit", "verify"]).expect_code(0).stdout();
    assert!(ok.contains("audit log verified: 8 entries, 2 checkpoints"), "{ok}");
    let proof = sandbox.run(&["audit", "prove", "3"]).expect_code(0).stdout();
    assert!(proof.contains("\"tree_size\": 8") && proof.contains("\"proof\""), "{proof}");
    sandbox.run(&["audit", "prove", "8"]).expect_code(1);

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let mut conn = db(&sandbox).await;
        type Tamper = (&'static str, &'static str, &'static str);
        // (what, read the value, write it back): each value flipped, checked, then restored.
        let cases: [Tamper; 4] = [
            (
                "an entry's text",
                "SELECT entry FROM audit_entries WHERE seq = 4",
                "UPDATE audit_entries SET entry = $1 WHERE seq = 4",
            ),
            (
                "a tile of leaf hashes",
                "SELECT hashes FROM audit_tiles WHERE level = 0 AND idx = 0",
                "UPDATE audit_tiles SET hashes = $1 WHERE level = 0 AND idx = 0",
            ),
            (
                "a checkpoint root",
                "SELECT root FROM audit_checkpoints WHERE size = 8",
                "UPDATE audit_checkpoints SET root = $1 WHERE size = 8",
            ),
            (
                "a signed note",
                "SELECT note FROM audit_checkpoints WHERE size = 7",
                "UPDATE audit_checkpoints SET note = $1 WHERE size = 7",
            ),
        ];
        for (what, read, write) in cases {
            let is_text = what.contains("text") || what.contains("note");
            if is_text {
                let original: String = sqlx::query_scalar(read).fetch_one(&mut conn).await.expect(what);
                for at in [0, original.len() / 2, original.len() - 3] {
                    sqlx::query(write).bind(flip(&original, at)).execute(&mut conn).await.expect(what);
                    let out = sandbox.run(&["audit", "verify"]).expect_code(2).stdout();
                    assert!(out.contains("does NOT verify"), "{what} at {at}: {out}");
                }
                sqlx::query(write).bind(&original).execute(&mut conn).await.expect(what);
            } else {
                let original: Vec<u8> = sqlx::query_scalar(read).fetch_one(&mut conn).await.expect(what);
                // Bits in the first, a middle and the last hash of a tile; all of a 32-byte value.
                for bit in [0usize, 77, 255, 600, 2047].into_iter().filter(|b| b / 8 < original.len()) {
                    let mut flipped = original.clone();
                    flipped[bit / 8] ^= 1 << (bit % 8);
                    sqlx::query(write).bind(&flipped).execute(&mut conn).await.expect(what);
                    let out = sandbox.run(&["audit", "verify"]).expect_code(2).stdout();
                    assert!(out.contains("does NOT verify"), "{what}, bit {bit}: {out}");
                }
                sqlx::query(write).bind(&original).execute(&mut conn).await.expect(what);
            }
            sandbox.run(&["audit", "verify"]).expect_code(0);
        }
        let named = {
            let original: String = sqlx::query_scalar("SELECT entry FROM audit_entries WHERE seq = 5")
                .fetch_one(&mut conn)
                .await
                .expect("entry");
            sqlx::query("UPDATE audit_entries SET entry = $1 WHERE seq = 5")
                .bind(flip(&original, 10))
                .execute(&mut conn)
                .await
                .expect("write");
            let out = sandbox.run(&["audit", "verify"]).expect_code(2).stdout();
            sqlx::query("UPDATE audit_entries SET entry = $1 WHERE seq = 5")
                .bind(&original)
                .execute(&mut conn)
                .await
                .expect("write");
            out
        };
        assert!(named.contains("entry 5"), "the first bad entry is named: {named}");
    });
}

#[test]
fn an_export_verifies_elsewhere_and_any_flipped_bit_in_it_is_reported() {
    let sandbox = seeded();
    let export = sandbox.path().join("audit.jsonl");
    sandbox.run(&["audit", "export", export.to_str().expect("path")]).expect_code(0);
    let text = std::fs::read_to_string(&export).expect("export");
    let header: serde_json::Value = serde_json::from_str(text.lines().next().expect("header")).expect("json");
    let key = header["verifier_key"].as_str().expect("key").to_owned();
    let out = sandbox
        .run(&["audit", "verify", "--file", export.to_str().expect("path"), "--key", &key])
        .expect_code(0)
        .stdout();
    assert!(out.contains("8 entries, 2 checkpoints"), "{out}");

    // Another log's key does not vouch for this one.
    let other = "other.example/log+00000000+AWJzGCU5Z7yMcdQOUqdq4RiPWuuSv5lyfG8Yrz5e2Pxd";
    let out = sandbox.run(&["audit", "verify", "--file", export.to_str().expect("path"), "--key", other]).stdout();
    assert!(!out.contains("audit log verified"), "{out}");

    let lines: Vec<&str> = text.lines().collect();
    for (n, line) in lines.iter().enumerate().skip(1) {
        // Flip a bit inside the line's payload (past the JSON keys), at two places.
        for at in [line.len() / 2, line.len() - 5] {
            let mut tampered = lines.clone();
            let flipped = flip(line, at);
            tampered[n] = &flipped;
            let file = sandbox.file("tampered.jsonl", &(tampered.join("\n") + "\n"));
            let run = sandbox.run(&["audit", "verify", "--file", file.to_str().expect("path"), "--key", &key]);
            assert_ne!(run.code(), 0, "line {n} flipped at {at} went unnoticed:\n{flipped}");
        }
    }
}
