//! B1: reset completion — the customer's form posted to `/reset/{token}` over HTTP: the link
//! looked up by its keyed hash, the password checked against the rules (blocklist, zxcvbn),
//! hashed with Argon2id (m=19456 KiB, t=2, p=1) on the bounded pool, and in one transaction the
//! link spent, the password stored, every session revoked, the case completed with its
//! timeline and audit entries, and the notices queued for every registered address.
//!
//! Baseline, in the same run: raw Argon2id hashes with the same parameters on as many threads
//! as the pool has workers, measured before the server starts and again after it has stopped;
//! the ratio is against their mean. The load generator runs on a thread of its own with its own
//! runtime, so the CPU beside the hash is split into the server's and the client's. Resident
//! memory is the whole bench process's peak while the server runs (the load generator and the
//! prepared links included), against the bound of workers × m + 64 MiB.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use regain_core::case::{apply, CaseCommand, NewCase};
use regain_core::{Actor, Case, CaseId, CaseKind, Channel};
use regain_hashing::Params;
use regain_server::routes::customers::{create_customer_record, CustomerInput};
use regain_server::routes::tenants::{create_tenant_record, CreateTenant};
use regain_server::AppState;
use regain_store::{Effect, LinkPurpose, NewCustomerLink};
use serde_json::json;

use crate::harness::{
    closed_loop, cores, on_load_thread, peak_rss_mib, reset_peak_rss, serve_stoppable, Measured, ThreadCpu,
};
use crate::scenarios::{line, raw_argon2, sqlite_store};

const PASSWORD: &str = "umbrella-gravel-Tuesday-91";
/// Customers (and reset links) per batch of setup writes.
const CHUNK: usize = 200;

pub async fn reset_sqlite(window: Duration, clients: usize) -> anyhow::Result<String> {
    let workers = cores();
    let params = Params::default();
    let before = tokio::task::spawn_blocking(move || raw_argon2(params, workers, window)).await??;
    // The baseline's buffers are given back; the peak from here on is the server's run.
    let peak_reset = reset_peak_rss();

    let dir = tempfile::tempdir()?;
    let store = sqlite_store(&dir, "regain.db").await?;
    let (base, state, running) =
        serve_stoppable(Arc::new(store), regain_delivery::Router::new(None, None), true).await?;
    // Enough links for a run at the raw rate and a half.
    let needed = (before.rate() * window.as_secs_f64() * 1.5) as usize + 64;
    let tokens = Arc::new(links(&state, needed).await?);
    let next = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    let cpu_before = ThreadCpu::now();
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
    // What a reset costs beside its hash, over the window: the CPU of the server's other threads
    // (the HTTP server and the background workers on the runtime, SQLite's connection threads),
    // and the load generator's apart.
    let spent = cpu_before
        .zip(ThreadCpu::now())
        .map(|(before, after)| ThreadCpu { load: load.unwrap_or(f64::NAN), ..after.since(&before) });
    // Peak memory of the server's run (its start, the setup, the window), not the second
    // baseline's buffers on top of what the server still holds.
    let rss = peak_rss_mib().map(|mib| (mib, peak_reset));
    // The raw rate again once the server and its background work have stopped: the machines
    // here drift by ±10 % within a minute, so the baseline is the mean of before and after.
    running.stop().await?;
    drop(state);
    let after = tokio::task::spawn_blocking(move || raw_argon2(params, workers, window)).await??;
    Ok(report(&measured, &before, &after, spent, rss, params, workers, needed, clients))
}

#[allow(clippy::too_many_arguments)]
fn report(
    measured: &Measured,
    before: &Measured,
    after: &Measured,
    cpu: Option<ThreadCpu>,
    rss: Option<(f64, bool)>,
    params: Params,
    workers: usize,
    links: usize,
    clients: usize,
) -> String {
    let rss = match rss {
        Some((mib, true)) => format!("{mib:.0} MiB while the server ran"),
        Some((mib, false)) => format!("{mib:.0} MiB since the bench started"),
        None => "n/a".to_owned(),
    };
    let bound = workers as f64 * f64::from(params.m_kib) / 1024.0 + 64.0;
    let raw = Measured {
        ok: before.ok + after.ok,
        failed: 0,
        elapsed: before.elapsed + after.elapsed,
        latencies_us: Vec::new(),
    };
    let resets = measured.ok.max(1) as f64;
    let cpu = cpu.map_or_else(String::new, |c| {
        let ms = |s: f64| 1000.0 * s / resets;
        format!(
            "; CPU per reset: {:.1} ms in the hashing workers, beside them {:.1} ms in the server ({:.1} ms runtime, \
             {:.1} ms SQLite's threads) and {:.1} ms in the load generator; {:.0} context switches per reset",
            ms(c.hashing),
            ms(c.runtime + c.sqlite),
            ms(c.runtime),
            ms(c.sqlite),
            ms(c.load),
            c.switches as f64 / resets
        )
    });
    format!(
        "{} (raw {:.0}/s before, {:.0}/s after{cpu}; Argon2id m={} KiB t={} p={}, {workers} workers, {clients} clients, {links} links prepared) | peak RSS of the whole bench process {rss}, bound {bound:.0} MiB",
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
                case_id: case.id,
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
