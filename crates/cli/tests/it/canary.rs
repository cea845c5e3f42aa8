//! No secrets in logs (SECURITY.md L2): a real `regain serve`, flows run with canary values,
//! then every log line and the database files are searched for them.

use std::io::Read as _;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::admin::with_tenant;

const STAFF_PASSWORD: &str = "Canary-Staff-Pass-7731";
const CUSTOMER_PASSWORD: &str = "Canary-Customer-Pass-4410";
const CUSTOMER_EMAIL: &str = "canary.person@canary-mail.example";
const CUSTOMER_PHONE: &str = "+12015550188";
const CUSTOMER_NAME: &str = "Canary Q. Person";
const ANSWER: &str = "Canary-Answer-Maiden-Name-9921";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn wait_ready(base: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("regain serve exited early: {status}");
        }
        if reqwest::blocking::get(format!("{base}/readyz")).is_ok_and(|r| r.status().is_success()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("regain serve did not become ready");
}

#[test]
fn canaries_never_reach_the_logs_and_secrets_never_the_database() {
    let sandbox = with_tenant();
    let staff = sandbox
        .run_stdin(
            &[
                "staff",
                "create",
                "--tenant",
                "acme",
                "--email",
                "ana@acme.test",
                "--name",
                "Ana",
                "--role",
                "tenant_admin",
                "--password-stdin",
            ],
            &format!("{STAFF_PASSWORD}\n"),
        )
        .expect_code(0)
        .stdout();
    let totp_secret = staff
        .lines()
        .find_map(|l| {
            l.split_whitespace()
                .find(|w| w.len() == 32 && w.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()))
        })
        .expect("TOTP secret printed")
        .to_owned();
    let api_key = sandbox
        .run(&["apikey", "create", "--tenant", "acme", "--name", "crm"])
        .expect_code(0)
        .stdout()
        .trim()
        .to_owned();
    assert!(api_key.starts_with("rgk_"));

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut cmd = sandbox.command(&["serve"]);
    cmd.env("REGAIN__SERVER__LISTEN", format!("127.0.0.1:{port}")).env("REGAIN__LOG__LEVEL", "debug");
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn serve");
    wait_ready(&base, &mut child);

    let client = reqwest::blocking::Client::new();
    let customer = serde_json::json!({
        "username": "canary", "full_name": CUSTOMER_NAME, "password": CUSTOMER_PASSWORD,
        "emails": [{"address": CUSTOMER_EMAIL, "verified": true}], "phones": [{"number": CUSTOMER_PHONE, "verified": true}],
    });
    let created =
        client.post(format!("{base}/api/v1/customers")).bearer_auth(&api_key).json(&customer).send().expect("create");
    assert_eq!(created.status(), 201);
    let search = client
        .get(format!("{base}/api/v1/customers?email={CUSTOMER_EMAIL}"))
        .bearer_auth(&api_key)
        .send()
        .expect("search");
    assert_eq!(search.status(), 200);
    let mut tokens = vec![api_key.clone()];
    for password in [CUSTOMER_PASSWORD, "wrong password entirely"] {
        let login = client
            .post(format!("{base}/api/v1/directory/acme/login"))
            .json(&serde_json::json!({"username": "canary", "password": password}))
            .send()
            .expect("login");
        if let Ok(body) = login.json::<serde_json::Value>() {
            if let Some(token) = body["token"].as_str() {
                tokens.push(token.to_owned());
            }
        }
    }
    let code = sandbox.run(&["totp", &totp_secret]).expect_code(0).stdout().trim().to_owned();
    let staff_login = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": "ana@acme.test", "password": STAFF_PASSWORD, "totp_code": code}))
        .send()
        .expect("staff login");
    let staff_token =
        staff_login.json::<serde_json::Value>().expect("json")["token"].as_str().expect("token").to_owned();
    tokens.push(staff_token.clone());
    let case = client
        .post(format!("{base}/api/v1/cases"))
        .bearer_auth(&staff_token)
        .json(&serde_json::json!({"kind": "password_reset", "channel": "phone"}))
        .send()
        .expect("case");
    assert_eq!(case.status(), 201);
    let case_id = case.json::<serde_json::Value>().expect("json")["id"].as_str().expect("id").to_owned();
    let note = client
        .post(format!("{base}/api/v1/cases/{case_id}/notes"))
        .bearer_auth(&staff_token)
        .json(&serde_json::json!({"text": format!("caller answered {ANSWER}")}))
        .send()
        .expect("note");
    assert_eq!(note.status(), 200);
    // A malformed body and a bad token are logged too: still no canary.
    client
        .post(format!("{base}/api/v1/cases"))
        .bearer_auth(&staff_token)
        .body(format!("{{\"kind\": \"{STAFF_PASSWORD}"))
        .send()
        .ok();
    client.get(format!("{base}/api/v1/cases")).bearer_auth(format!("rgk_{CUSTOMER_PASSWORD}")).send().ok();
    std::thread::sleep(Duration::from_millis(700)); // one more sequencer tick

    child.kill().ok();
    let mut logs = String::new();
    child.stdout.take().expect("stdout").read_to_string(&mut logs).ok();
    child.stderr.take().expect("stderr").read_to_string(&mut logs).ok();
    child.wait().ok();
    assert!(logs.lines().filter(|l| l.contains("request served")).count() >= 5, "the requests were logged:\n{logs}");

    let mut canaries = vec![
        STAFF_PASSWORD,
        CUSTOMER_PASSWORD,
        CUSTOMER_EMAIL,
        CUSTOMER_PHONE,
        "2015550188",
        CUSTOMER_NAME,
        ANSWER,
        totp_secret.as_str(),
    ];
    canaries.extend(tokens.iter().map(String::as_str));
    for canary in &canaries {
        assert!(!logs.contains(canary), "{canary} is in the logs");
    }

    // The database files hold no password, key, token or personal data in the clear (issue 3
    // item 8): contacts, names and free text are sealed under the customer's or case's key.
    let mut db = Vec::new();
    for name in ["regain.db", "regain.db-wal"] {
        if let Ok(bytes) = std::fs::read(sandbox.path().join("data").join(name)) {
            db.extend(bytes);
        }
    }
    assert!(!db.is_empty());
    let in_clear =
        [STAFF_PASSWORD, CUSTOMER_PASSWORD, CUSTOMER_EMAIL, CUSTOMER_PHONE, "2015550188", CUSTOMER_NAME, ANSWER];
    for secret in in_clear.iter().copied().chain(tokens.iter().map(String::as_str)) {
        assert!(!db.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} is in the database files");
    }
}
