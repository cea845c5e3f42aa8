//! `regain demo`: it seeds, serves on the address it reports, and every command its banner
//! prints works as printed. A second run keeps the data and mints a new key.

use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::Sandbox;

const BANNER_END: &str = "Requests are logged to stderr. Press Ctrl-C to stop.";
/// Seeding hashes passwords with Argon2id; generous for a loaded machine.
const BANNER_TIMEOUT: Duration = Duration::from_secs(90);

/// A running demo, killed when dropped (also when a test fails).
struct Demo {
    child: Child,
    banner: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Demo {
    fn start(sandbox: &Sandbox, data_dir: &Path, run: u32) -> Self {
        let stderr_path = sandbox.path().join(format!("demo-{run}.stderr"));
        let mut cmd = sandbox.command(&["demo", "--listen", "127.0.0.1:0", "--data-dir", data_dir.to_str().unwrap()]);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(File::create(&stderr_path).unwrap());
        let mut child = cmd.spawn().expect("spawn regain demo");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut demo = Self { child, banner: String::new() };
        let deadline = Instant::now() + BANNER_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    demo.banner.push_str(&line);
                    demo.banner.push('\n');
                    if line == BANNER_END {
                        return demo;
                    }
                }
                Err(e) => panic!(
                    "no complete banner ({e:?}); so far:\n{}\n--- stderr\n{}",
                    demo.banner,
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                ),
            }
        }
    }

    /// The banner's commands, each with the comment line above it.
    fn commands(&self) -> Vec<(String, String)> {
        let mut comment = String::new();
        let mut commands = Vec::new();
        for line in self.banner.lines().map(str::trim) {
            if let Some(c) = line.strip_prefix("# ") {
                comment = c.to_owned();
            } else if line.starts_with("curl ") {
                commands.push((comment.clone(), line.to_owned()));
            }
        }
        commands
    }

    fn command(&self, about: &str) -> String {
        self.commands()
            .into_iter()
            .find(|(comment, _)| comment.contains(about))
            .map(|(_, command)| command)
            .unwrap_or_else(|| panic!("no command about {about:?} in:\n{}", self.banner))
    }

    fn field(&self, label: &str) -> String {
        self.banner
            .lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("no {label:?} in:\n{}", self.banner))
    }

    fn api_key(&self) -> String {
        let lines: Vec<&str> = self.banner.lines().collect();
        let at = lines.iter().position(|l| l.starts_with("API key")).expect("an API key section");
        lines[at + 1].trim().to_owned()
    }

    /// The TOTP secret printed for `email` (the last column of its row).
    fn totp_secret(&self, email: &str) -> String {
        self.banner
            .lines()
            .find(|l| l.trim().starts_with(email))
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or_else(|| panic!("no row for {email}"))
            .to_owned()
    }
}

/// Runs a printed command exactly as printed (through bash), plus `-w` to learn the status.
fn run_curl(command: &str) -> (u16, Value) {
    let output =
        Command::new("bash").arg("-c").arg(format!("{command} -w '\\n%{{http_code}}'")).output().expect("run bash");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    let status: u16 = status.trim().parse().unwrap_or_else(|_| panic!("no status from {command}: {text}"));
    let body = serde_json::from_str(body).unwrap_or(Value::Null);
    (status, body)
}

fn require_curl() {
    let found = Command::new("curl").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(
        found,
        "curl is not installed: this test runs the demo banner's curl commands as a person would \
         (install it, e.g. `apt-get install -y curl`)"
    );
}

#[test]
fn the_demo_serves_and_its_printed_commands_work() {
    require_curl();
    let sandbox = Sandbox::new();
    let data_dir = sandbox.path().join("demo-data");
    let demo = Demo::start(&sandbox, &data_dir, 1);
    assert!(data_dir.join("demo.db").is_file());

    let base = demo.field("Base URL");
    assert!(base.starts_with("http://127.0.0.1:") && !base.ends_with(":0"), "{base}");
    for expected in ["/api/v1/openapi.json", "/healthz", "/metrics", "demo-password-1234", "seeded just now"] {
        assert!(demo.banner.contains(expected), "banner lacks {expected}:\n{}", demo.banner);
    }
    for role in ["agent", "supervisor", "security_analyst", "tenant_admin", "auditor", "deployment_admin"] {
        assert!(demo.banner.contains(&format!("  {role} ")), "no {role} in the staff table");
    }
    let key = demo.api_key();
    assert!(key.starts_with("rgk_"), "{key}");

    let (status, case) = run_curl(&demo.command("Open a case"));
    assert_eq!(status, 201, "{case}");
    assert_eq!(case["state"], "open");
    assert_eq!(case["kind"], "password_reset");
    let case_id = case["id"].as_str().expect("case id").to_owned();
    // Assessed at intake (issue 5); the demo's example deny list is loaded.
    assert_eq!(case["risk"]["route"], "proceed", "{case}");
    assert!(data_dir.join("risk-lists/example.deny.txt").is_file());
    assert!(demo.banner.contains("Risk lists"), "{}", demo.banner);

    let (status, list) = run_curl(&demo.command("List the open cases"));
    assert_eq!(status, 200, "{list}");
    let items = list["items"].as_array().expect("items");
    assert!(items.iter().all(|c| c["state"] == "open"), "{list}");
    assert!(items.iter().any(|c| c["id"] == case_id.as_str()), "{list}");
    assert!(items.len() > 1, "seeded open cases are listed too: {list}");

    let (status, timeline) = run_curl(&demo.command("timeline"));
    assert_eq!(status, 200, "{timeline}");
    let entries = timeline["items"].as_array().expect("entries");
    assert!(entries.len() >= 5, "{timeline}");
    assert_eq!(entries[0]["type"], "case.opened");
    assert_eq!(entries.last().unwrap()["state"], "resolved");

    let (status, session) = run_curl(&demo.command("customer"));
    assert_eq!(status, 200, "{session}");
    assert!(session["token"].as_str().unwrap().starts_with("rgc_"), "{session}");

    let (status, login) = run_curl(&demo.command("Sign in as"));
    assert_eq!(status, 200, "{login}");
    assert!(login["token"].as_str().unwrap().starts_with("rgs_"), "{login}");

    // A person copies a supervisor's secret from the table, asks `regain totp`, and signs in.
    let email = "sofia.rossi@acme-bank.example";
    let secret = demo.totp_secret(email);
    let code = sandbox.run(&["totp", &secret]).expect_code(0).stdout();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let response = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"email": email, "password": "demo-password-1234", "totp_code": code.trim()}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        let token = body["token"].as_str().unwrap();
        let me: Value =
            http.get(format!("{base}/api/v1/auth/me")).bearer_auth(token).send().await.unwrap().json().await.unwrap();
        assert_eq!(me["role"], "supervisor");
        for path in ["/healthz", "/api/v1/openapi.json", "/metrics"] {
            let status = http.get(format!("{base}{path}")).send().await.unwrap().status();
            assert_eq!(status, 200, "{path}");
        }
    });
    drop(demo);

    // Again on the same data: kept, with a new key that works.
    let again = Demo::start(&sandbox, &data_dir, 2);
    assert!(again.banner.contains("kept from an earlier run"), "{}", again.banner);
    assert_ne!(again.api_key(), key);
    assert_eq!(again.totp_secret(email), secret, "the same staff, the same secrets");
    let (status, list) = run_curl(&again.command("List the open cases"));
    assert_eq!(status, 200, "{list}");
    let items = list["items"].as_array().expect("items");
    assert!(items.iter().any(|c| c["id"] == case_id.as_str()), "the first run's case is kept");
    let (status, timeline) = run_curl(&again.command("timeline"));
    assert_eq!(status, 200, "{timeline}");
}
