//! B1: reset completion — the customer's form posted to `/reset/{token}` over HTTP: the link
//! looked up by its keyed hash, the password checked against the rules (blocklist, zxcvbn),
//! hashed with Argon2id (m=19456 KiB, t=2, p=1) on the bounded pool, and in one transaction the
//! link spent, the password stored, every session revoked, the case completed with its
//! timeline and audit entries, and the notices queued for every registered address.
//!
//! The server runs in a process of its own (this binary again, started with `--serve-child`),
//! as it would in production: its resident memory is its own peak, read by the kernel
//! (`VmHWM`) — not the bench process's, which also holds the load generator, the prepared links
//! and the baseline's buffers — and its CPU beside the hash is its own threads'. The database is
//! prepared beforehand by this process (customers, cases in `executing`, live links) and handed
//! over closed, with the master key that unlocks it (the first line on the server's stdin).
//!
//! Baseline, in the same run: raw Argon2id hashes with the same parameters on as many threads
//! as the pool has workers, measured before the server starts and again after it has stopped;
//! the ratio is against their mean. The load generator runs on a thread of its own with its own
//! runtime.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use regain_core::case::{apply, CaseCommand, NewCase};
use regain_core::{Actor, Case, CaseId, CaseKind, Channel};
use regain_hashing::Params;
use regain_server::routes::customers::{create_customer_record, CustomerInput};
use regain_server::routes::tenants::{create_tenant_record, CreateTenant};
use regain_server::AppState;
use regain_store::{Effect, LinkPurpose, MasterKey, NewCustomerLink, Store};
use regain_store_sqlite::{SqliteConfig, SqliteStore};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::harness::{closed_loop, cores, on_load_thread, peak_rss_mib, serve_stoppable, Measured, ThreadCpu};
use crate::scenarios::{line, raw_argon2};

const PASSWORD: &str = "umbrella-gravel-Tuesday-91";
/// Customers (and reset links) per batch of setup writes.
const CHUNK: usize = 200;
/// How long the server process may take to answer a line (start, a command, stopping).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

pub async fn reset_sqlite(window: Duration, clients: usize) -> anyhow::Result<String> {
    let workers = cores();
    let params = Params::default();
    let before = tokio::task::spawn_blocking(move || raw_argon2(params, workers, window)).await??;

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("regain.db");
    let master = MasterKey::generate();
    // Enough links for a run at the raw rate and a half.
    let needed = (before.rate() * window.as_secs_f64() * 1.5) as usize + 64;
    let tokens = Arc::new(prepare(&path, &master, needed).await?);

    let mut server = ServerProcess::start(&path, &master).await?;
    let base = server.base.clone();
    let next = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    server.command("start").await?;
    let (measured, load) = on_load_thread(move || {
        closed_loop(clients, window, move |_| {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let request = tokens.get(i).map(|token| {
                client.post(format!("{base}/reset/{token}")).form(&[("password", PASSWORD), ("confirm", PASSWORD)])
            });
            async move {
                match request {
                    Some(request) => request.send().await.is_ok_and(|r| r.status().is_success()),
                    None => false,
                }
            }
        })
    })
    .await?;
    let served = server.finish().await?;
    // The raw rate again once the server process has ended: the machines here drift by ±10 %
    // within a minute, so the baseline is the mean of before and after.
    let after = tokio::task::spawn_blocking(move || raw_argon2(params, workers, window)).await??;
    let cpu = ThreadCpu { load: load.unwrap_or(f64::NAN), ..served.cpu };
    Ok(report(&measured, &before, &after, cpu, served.peak_rss_mib, params, workers, needed, clients))
}

/// Writes the database the server will run on: a tenant, `count` customers each with a
/// password reset case in `executing` and a live reset link; returns the links' tokens. The
/// store is closed (its WAL checkpointed) before this returns.
async fn prepare(path: &Path, master: &MasterKey, count: usize) -> anyhow::Result<Vec<String>> {
    let store = SqliteStore::connect(&SqliteConfig::for_file(path)).await?;
    store.migrate().await?;
    store.unlock(MasterKey::from_text(&master.to_text())?, regain_store::conformance::t0()).await?;
    let (_, state, running) =
        serve_stoppable(Arc::new(store.clone()), regain_delivery::Router::new(None, None), false).await?;
    let tokens = links(&state, count).await;
    running.stop().await?;
    drop(state);
    store.close().await;
    tokens
}

/// What the server process reported as it stopped.
struct Served {
    /// CPU of its threads over the measured window (the load generator's is not among them).
    cpu: ThreadCpu,
    /// Its peak resident memory over its whole life, in MiB.
    peak_rss_mib: Option<f64>,
}

/// The server, running as a child process; spoken to over its stdin and stdout, a line each.
struct ServerProcess {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    base: String,
}

impl ServerProcess {
    /// Starts the process on the database at `path` and hands it the master key; returns once
    /// it listens.
    async fn start(path: &Path, master: &MasterKey) -> anyhow::Result<Self> {
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .arg("--serve-child")
            .arg(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take().ok_or_else(|| anyhow::anyhow!("the server process has no stdin"))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("the server process has no stdout"))?;
        let mut server = Self { child, stdin, lines: BufReader::new(stdout).lines(), base: String::new() };
        let listening = server.command(master.to_text().as_str()).await?;
        server.base = listening
            .strip_prefix("listening ")
            .ok_or_else(|| anyhow::anyhow!("the server process did not start: {listening:?}"))?
            .to_owned();
        Ok(server)
    }

    /// Sends `line` and waits for the process's answer line.
    async fn command(&mut self, line: &str) -> anyhow::Result<String> {
        self.stdin.write_all(format!("{line}\n").as_bytes()).await?;
        self.stdin.flush().await?;
        let answer = tokio::time::timeout(ANSWER_TIMEOUT, self.lines.next_line())
            .await
            .map_err(|_| anyhow::anyhow!("the server process did not answer within {ANSWER_TIMEOUT:?}"))??;
        answer.ok_or_else(|| anyhow::anyhow!("the server process ended before it answered"))
    }

    /// Ends the measurement: the process reports its CPU and memory, stops, and exits.
    async fn finish(mut self) -> anyhow::Result<Served> {
        let report: serde_json::Value = serde_json::from_str(&self.command("stop").await?)?;
        drop(self.stdin);
        let status = tokio::time::timeout(ANSWER_TIMEOUT, self.child.wait())
            .await
            .map_err(|_| anyhow::anyhow!("the server process did not end within {ANSWER_TIMEOUT:?}"))??;
        anyhow::ensure!(status.success(), "the server process ended with {status}");
        let seconds = |field: &str| report[field].as_f64().unwrap_or(f64::NAN);
        Ok(Served {
            cpu: ThreadCpu {
                hashing: seconds("hashing"),
                sqlite: seconds("sqlite"),
                runtime: seconds("runtime"),
                load: 0.0,
                switches: report["switches"].as_u64().unwrap_or(0),
            },
            peak_rss_mib: report["peak_rss_mib"].as_f64(),
        })
    }
}

/// The server process's side (`regain-bench --serve-child <database>`): reads the master key
/// from its first line of stdin, serves the prepared database on a free loopback port with the
/// bench's configuration, prints `listening <url>`, snapshots its threads' CPU on `start`, and
/// on `stop` prints that CPU and its peak resident memory as one JSON line, stops serving and
/// returns.
pub async fn serve_child(path: PathBuf) -> anyhow::Result<()> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let key = lines.next_line().await?.ok_or_else(|| anyhow::anyhow!("no master key on stdin"))?;
    let master = MasterKey::from_text(key.trim())?;
    drop(key);
    let store = SqliteStore::connect(&SqliteConfig::for_file(&path)).await?;
    store.unlock(master, regain_store::conformance::t0()).await?;
    let (base, state, running) =
        serve_stoppable(Arc::new(store.clone()), regain_delivery::Router::new(None, None), true).await?;
    let mut out = tokio::io::stdout();
    let say = |text: String| format!("{text}\n").into_bytes();
    out.write_all(&say(format!("listening {base}"))).await?;
    out.flush().await?;
    let mut started = None;
    while let Some(command) = lines.next_line().await? {
        match command.trim() {
            "start" => {
                started = ThreadCpu::now();
                out.write_all(&say("started".into())).await?;
            }
            "stop" => {
                let cpu = started.zip(ThreadCpu::now()).map(|(before, after)| after.since(&before)).unwrap_or_default();
                let report = json!({
                    "hashing": cpu.hashing, "sqlite": cpu.sqlite, "runtime": cpu.runtime,
                    "switches": cpu.switches, "peak_rss_mib": peak_rss_mib(),
                });
                out.write_all(&say(report.to_string())).await?;
                out.flush().await?;
                break;
            }
            other => anyhow::bail!("unknown command {other:?}"),
        }
        out.flush().await?;
    }
    running.stop().await?;
    drop(state);
    store.close().await;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn report(
    measured: &Measured,
    before: &Measured,
    after: &Measured,
    cpu: ThreadCpu,
    rss: Option<f64>,
    params: Params,
    workers: usize,
    links: usize,
    clients: usize,
) -> String {
    let rss = rss.map_or_else(|| "n/a".to_owned(), |mib| format!("{mib:.0} MiB"));
    let bound = workers as f64 * f64::from(params.m_kib) / 1024.0 + 64.0;
    let raw = Measured {
        ok: before.ok + after.ok,
        failed: 0,
        elapsed: before.elapsed + after.elapsed,
        latencies_us: Vec::new(),
    };
    let resets = measured.ok.max(1) as f64;
    let ms = |s: f64| 1000.0 * s / resets;
    // The hashing workers' share of all the CPU the run used: what the ratio would be if a hash
    // cost the same in the server as a raw one. Unlike the ratio, it does not move with the
    // machine's speed between the baseline's windows and the server's.
    let share = 100.0 * cpu.hashing / (cpu.hashing + cpu.runtime + cpu.sqlite + cpu.load);
    let cpu = format!(
        "; CPU per reset in the server process: {:.1} ms in the hashing workers, beside them {:.1} ms ({:.1} ms runtime, \
         {:.1} ms SQLite's threads) and {:.1} ms in the load generator, so hashing had {share:.1} % of the CPU; \
         {:.0} context switches per reset",
        ms(cpu.hashing),
        ms(cpu.runtime + cpu.sqlite),
        ms(cpu.runtime),
        ms(cpu.sqlite),
        ms(cpu.load),
        cpu.switches as f64 / resets
    );
    format!(
        "{} (raw {:.0}/s before, {:.0}/s after{cpu}; Argon2id m={} KiB t={} p={}, {workers} workers, {clients} clients, {links} links prepared) | peak RSS of the server process {rss}, bound {bound:.0} MiB",
        line("B1 reset completion, HTTP form, SQLite", "resets", measured, "raw Argon2id hashes", &raw),
        before.rate(),
        after.rate(),
        params.m_kib,
        params.t,
        params.p
    )
}

/// `count` customers, each with a password reset case in `executing` and a live reset link;
/// returns the links' tokens.
async fn links(state: &AppState, count: usize) -> anyhow::Result<Vec<String>> {
    let err = |e: regain_server::error::ApiError| anyhow::anyhow!("{e}");
    let tenant = create_tenant_record(
        state,
        serde_json::from_value::<CreateTenant>(json!({"slug": "bench", "display_name": "Bench"}))?,
        Actor::System,
    )
    .await
    .map_err(err)?;
    let mut tokens = Vec::with_capacity(count);
    for chunk in 0..count.div_ceil(CHUNK) {
        let mut effects = Vec::with_capacity(CHUNK);
        for i in chunk * CHUNK..((chunk + 1) * CHUNK).min(count) {
            let input: CustomerInput = serde_json::from_value(json!({
                "username": format!("reset-{i}"), "full_name": "Bench Customer",
                "emails": [{"address": format!("reset-{i}@example.com"), "verified": true, "added_at": "2024-01-15T10:00:00Z"}],
                "phones": [{"number": format!("+1201555{:04}", i % 10_000), "verified": true, "added_at": "2024-01-15T10:00:00Z"}],
            }))?;
            let customer = create_customer_record(state, tenant.id, "US", &input, Actor::System).await.map_err(err)?;
            let case = executing_case(state, &tenant, customer.id).await?;
            let token = regain_server::auth::new_token("", state.entropy.as_ref());
            let now = state.now();
            let link = NewCustomerLink {
                id: regain_server::verification::new_id(state),
                purpose: LinkPurpose::Reset,
                tenant_id: tenant.id,
                case_id: Some(case.id),
                customer_id: customer.id,
                destination: "r***@e***.com".into(),
                expires_at: now + regain_core::chrono::Duration::hours(6),
                created_at: now,
            };
            effects.push(Effect::IssueLink { link, token: token.clone() });
            tokens.push(token);
        }
        state.store.apply_effects(state.now(), &effects).await?;
    }
    Ok(tokens)
}

/// A password reset case taken to `executing` the way the desk would, written in one go.
async fn executing_case(
    state: &AppState,
    tenant: &regain_core::Tenant,
    customer: regain_core::CustomerId,
) -> anyhow::Result<Case> {
    let now = state.now();
    let id = CaseId::generate(state.clock.as_ref(), state.entropy.as_ref());
    let new = NewCase { kind: CaseKind::PasswordReset, channel: Channel::Web, summary: None };
    let (mut case, mut events) = Case::open(id, tenant.id, &tenant.settings, new, Actor::System, now);
    for command in [
        CaseCommand::StartIdentification,
        CaseCommand::Identify { customer_id: customer },
        CaseCommand::Decide { approve: true, reason: "bench".into() },
        CaseCommand::Execute,
    ] {
        let (next, more) = apply(&case, command, Actor::System, now)?;
        case = next;
        events.extend(more);
    }
    case.version = 1;
    state.store.create_case(&case, &events, &Actor::System).await?;
    Ok(case)
}
