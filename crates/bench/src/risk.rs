//! B5: risk scoring for a customer with 1,000 past events, signals gathered from the store.
//!
//! The customer has 1,000 past recovery requests (cases over the last 30 days, from 20
//! addresses, across channels) and 1,000 successful sign-ins (over 180 days); the bench assesses
//! a fresh case of theirs over and over, one at a time, exactly as a request does before any
//! action — the tenant's policy, the tenant, the customer (decrypted), the store's history (the
//! request's per-IP/phone/email counts, the customer's counts and last changes, recent
//! sign-ins), the tenant's usual hours (cached), the lists, and the pure scoring — and reports
//! the latency percentiles. Beside it, in the same run: one indexed `COUNT(*)` over the
//! customer's requests on the same database (the floor of any store read), and the scoring
//! function alone. `REGAIN_BENCH_RISK_PARTS=1` also prints each part's latencies (the policy,
//! the customer, the store's history, the whole snapshot) to standard error.

use std::sync::Arc;
use std::time::{Duration, Instant};

use regain_core::case::{CaseState, Channel, NewCase};
use regain_core::chrono::Duration as Span;
use regain_core::{Actor, Case, CaseId, CaseKind, Customer};
use regain_server::routes::customers::{create_customer_record, CustomerInput};
use regain_server::routes::tenants::{create_tenant_record, CreateTenant};
use regain_server::AppState;
use regain_store::{LoginAttempt, RequestContext, Store};
use serde_json::json;

use crate::harness::{serve, Measured};
use crate::scenarios::{pool_close, sqlite_store};

const P99_TARGET_MS: f64 = 1.0;
pub const PAST_EVENTS: usize = 1_000;

/// The customer with their history, and the case that is assessed.
async fn fixture(state: &AppState) -> anyhow::Result<(Customer, Case)> {
    let err = |e: regain_server::error::ApiError| anyhow::anyhow!("{e}");
    let tenant = create_tenant_record(
        state,
        serde_json::from_value::<CreateTenant>(json!({"slug": "bench", "display_name": "Bench"}))?,
        Actor::System,
    )
    .await
    .map_err(err)?;
    let input: CustomerInput = serde_json::from_value(json!({
        "username": "bench-user", "full_name": "Bench User", "account_number": "AC-1",
        "emails": [{"address": "bench@example.com", "verified": true, "added_at": "2024-01-15T10:00:00Z"}],
        "phones": [{"number": "+12015550100", "verified": true, "added_at": "2024-01-15T10:00:00Z"}],
        "password": "bench password 1234",
    }))?;
    let customer = create_customer_record(state, tenant.id, "US", &input, Actor::System).await.map_err(err)?;
    let now = state.now();
    let channels = [Channel::Web, Channel::Chat, Channel::Phone, Channel::Email];
    let context = |i: usize| RequestContext {
        ip: Some(format!("198.51.100.{}", i % 20)),
        user_agent: Some(format!("browser {}", i % 5)),
        device_id: None,
        phone: Some("+12015550100".into()),
        email: Some("bench@example.com".into()),
        named_phone: None,
        named_email: None,
    };
    for i in 0..PAST_EVENTS {
        let at = now - Span::minutes(30 * 24 * 60 * i as i64 / PAST_EVENTS as i64) - Span::minutes(1);
        let new = NewCase { kind: CaseKind::PasswordReset, channel: channels[i % 4], summary: None };
        let id = CaseId::generate(state.clock.as_ref(), state.entropy.as_ref());
        let (mut case, events) = Case::open(id, tenant.id, &tenant.settings, new, Actor::System, at);
        case.customer_id = Some(customer.id);
        case.state = CaseState::Resolved;
        state.store.create_case(&case, &events, &Actor::System).await?;
        state.store.record_request(tenant.id, case.id, at, Some(customer.id), &context(i)).await?;
        let login = LoginAttempt {
            tenant_id: tenant.id,
            customer_id: customer.id,
            at: now - Span::minutes(180 * 24 * 60 * i as i64 / PAST_EVENTS as i64) - Span::minutes(1),
            ip: Some(format!("192.0.2.{}", i % 50)),
            user_agent: Some(format!("browser {}", i % 5)),
            success: true,
        };
        state.store.record_login(&login, 5).await?;
    }
    let new = NewCase { kind: CaseKind::MfaRecovery, channel: Channel::Web, summary: None };
    let id = CaseId::generate(state.clock.as_ref(), state.entropy.as_ref());
    let (mut case, events) = Case::open(id, tenant.id, &tenant.settings, new, Actor::System, now);
    case.customer_id = Some(customer.id);
    case.state = CaseState::Verifying;
    state.store.create_case(&case, &events, &Actor::System).await?;
    state.store.record_request(tenant.id, case.id, now, Some(customer.id), &context(7)).await?;
    Ok((customer, case))
}

/// Runs `op` one at a time until `window` has passed.
async fn sequential<F, Fut>(window: Duration, mut op: F) -> Measured
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    let mut measured = Measured { ok: 0, failed: 0, elapsed: Duration::ZERO, latencies_us: Vec::new() };
    while started.elapsed() < window {
        let t = Instant::now();
        if op().await {
            measured.ok += 1;
            measured.latencies_us.push(t.elapsed().as_micros() as u64);
        } else {
            measured.failed += 1;
        }
    }
    measured.elapsed = started.elapsed();
    measured.latencies_us.sort_unstable();
    measured
}

struct Figures {
    assess: Measured,
    reasons: usize,
    score_only: Measured,
    raw_count: Measured,
}

/// One raw indexed count, as its own future.
type RawCount = Box<dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>> + Send + Sync>;

async fn measure(
    store: Arc<dyn Store>,
    window: Duration,
    raw_count: RawCount,
    analyze: Option<&sqlx::PgPool>,
) -> anyhow::Result<Figures> {
    let (_, state) = serve(store).await?;
    let (customer, case) = fixture(&state).await?;
    // PostgreSQL here runs without autovacuum: statistics from after the setup, as a server
    // that has been running a while has them (otherwise plans stay as made on empty tables).
    if let Some(pool) = analyze {
        sqlx::query("ANALYZE").execute(pool).await?;
    }
    let customer_id = customer.id;
    let (first, _) = regain_server::risk::assess(&state, &case).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let reasons = first.reasons.len();
    // Warm up (the tenant's hours are cached from here on, as in a running server).
    for _ in 0..50 {
        regain_server::risk::assess(&state, &case).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let assess = sequential(window, || {
        let (state, case) = (&state, &case);
        async move { regain_server::risk::assess(state, case).await.is_ok() }
    })
    .await;
    let (policy, _) =
        regain_server::verification::tenant_policy(&state, case.tenant_id).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let customer = state.store.customer(case.tenant_id, customer_id).await?;
    let snapshot = regain_server::risk::snapshot(&state, &case, customer.as_ref(), "bench", &policy).await;
    let score_only = sequential(window.min(Duration::from_secs(2)), || {
        let assessed = regain_core::risk::score(&policy.risk, &snapshot);
        async move { assessed.score <= 100 }
    })
    .await;
    let raw_count = sequential(window, &*raw_count).await;
    // Where the time goes, part by part, when asked for.
    if std::env::var("REGAIN_BENCH_RISK_PARTS").is_ok() {
        let w = Duration::from_secs(2);
        let windows = regain_server::risk::windows(&policy);
        let now = state.now();
        let m = sequential(w, || async {
            regain_server::verification::tenant_policy(&state, case.tenant_id).await.is_ok()
        })
        .await;
        eprintln!("policy p50 {:.3} p99 {:.3}", m.percentile_ms(0.5), m.percentile_ms(0.99));
        let m = sequential(w, || async { state.store.customer(case.tenant_id, customer_id).await.is_ok() }).await;
        eprintln!("customer p50 {:.3} p99 {:.3}", m.percentile_ms(0.5), m.percentile_ms(0.99));
        let m = sequential(w, || async {
            state.store.risk_history(case.tenant_id, case.id, case.customer_id, &windows, now).await.is_ok()
        })
        .await;
        eprintln!("history p50 {:.3} p99 {:.3}", m.percentile_ms(0.5), m.percentile_ms(0.99));
        let m = sequential(w, || async {
            !regain_server::risk::snapshot(&state, &case, customer.as_ref(), "bench", &policy).await.signals.is_empty()
        })
        .await;
        eprintln!("snapshot p50 {:.3} p99 {:.3}", m.percentile_ms(0.5), m.percentile_ms(0.99));
    }
    Ok(Figures { assess, reasons, score_only, raw_count })
}

fn line(name: &str, f: &Figures) -> String {
    let p99 = f.assess.percentile_ms(0.99);
    let verdict = if p99 <= P99_TARGET_MS { "target met" } else { "target missed" };
    format!(
        "{name}: {} assessments, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} reasons, {PAST_EVENTS} requests + \
         {PAST_EVENTS} sign-ins on record; target p99 ≤ {P99_TARGET_MS} ms: {verdict}) | baseline: one indexed COUNT p50 \
         {:.3} ms, p99 {:.3} ms; scoring alone p99 {:.4} ms | ratio p99 {:.1}× the COUNT",
        f.assess.ok,
        f.assess.percentile_ms(0.5),
        p99,
        f.assess.latencies_us.last().copied().unwrap_or(0) as f64 / 1000.0,
        f.reasons,
        f.raw_count.percentile_ms(0.5),
        f.raw_count.percentile_ms(0.99),
        f.score_only.percentile_ms(0.99),
        p99 / f.raw_count.percentile_ms(0.99).max(0.001),
    )
}

const RAW_COUNT: &str = "SELECT COUNT(*) FROM risk_requests WHERE tenant_id = (SELECT id FROM tenants LIMIT 1) \
     AND customer_id IS NOT NULL AND at > $1";

pub async fn risk_sqlite(window: Duration) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    let store = sqlite_store(&dir, "risk.db").await?;
    // The baseline reads through a pool of its own on the same file, with the store's settings.
    let config = regain_store_sqlite::SqliteConfig::for_file(&dir.path().join("risk.db"));
    let store = Arc::new(store);
    let reader = regain_store_sqlite::SqliteStore::connect(&config).await?;
    let pool = reader.writer_pool().clone();
    let since = regain_core::env::to_micros(regain_core::chrono::Utc::now() - Span::days(1));
    let raw: RawCount = Box::new(move || {
        let pool = pool.clone();
        Box::pin(async move { sqlx::query_scalar::<_, i64>(RAW_COUNT).bind(since).fetch_one(&pool).await.is_ok() })
    });
    let figures = measure(store, window, raw, None).await?;
    Ok(line("B5 risk scoring, SQLite", &figures))
}

pub async fn risk_postgres(admin_url: &str, window: Duration) -> anyhow::Result<String> {
    let name = format!("regain_bench_risk_{}", std::process::id());
    let (store, mut admin) = crate::scenarios::scratch_postgres(admin_url, &name).await?;
    let pool = store.pool().clone();
    let since = regain_core::env::to_micros(regain_core::chrono::Utc::now() - Span::days(1));
    let count_pool = pool.clone();
    let raw: RawCount = Box::new(move || {
        let pool = count_pool.clone();
        Box::pin(async move { sqlx::query_scalar::<_, i64>(RAW_COUNT).bind(since).fetch_one(&pool).await.is_ok() })
    });
    let measured = measure(Arc::new(store), window, raw, Some(&pool)).await;
    pool.close().await;
    pool_close(&mut admin, &name).await;
    Ok(line("B5 risk scoring, PostgreSQL", &measured?))
}
