//! B3: code verification. A case in `verifying` with a code sent to its customer's email; the
//! bench redeems it with the right code over HTTP, first in a closed loop to find the maximum
//! rate R, then in an open loop at 0.8 R with latencies taken from each request's scheduled
//! start. Each code is single use, so every request takes a fresh case prepared beforehand
//! through the real flow (customer, case, identification, send, outbox delivery to a file sink).
//!
//! The baseline is what the design says the check is: a hash compare and one write — the same
//! keyed hash of the presented code as the store computes, compared in constant time with the
//! stored one read back by a single-row `UPDATE … RETURNING`, in one durable commit, on a pool
//! with the store's settings.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use regain_core::{Actor, TenantId};
use regain_crypto::{Keyring, MasterKey};
use regain_server::routes::api_keys::create_api_key_record;
use regain_server::routes::tenants::{create_tenant_record, CreateTenant};
use regain_server::AppState;
use regain_store::Store;
use regain_store_sql::verification::{code_hash, hashes_equal};
use serde_json::{json, Value};

use crate::harness::{closed_loop_while, open_loop, serve_with, Measured, OpenLoop};
use crate::scenarios::{pool_close, sqlite_store};

/// B3's target: p99 at 80 % of the maximum rate.
const P99_TARGET_MS: f64 = 5.0;
pub const LOAD_FRACTION: f64 = 0.8;
/// The closed loop's cases are prepared before its rate is known: enough for this rate over the
/// window (about 900/s were measured here). If they run out first, the measurement is simply
/// shorter, and the line says how long it was.
const CLOSED_LOOP_RATE_MAX: f64 = 1_500.0;
const CASES_MAX: usize = 50_000;
/// Clients that prepare cases.
const SETUP_CLIENTS: usize = 16;
/// When the customers' email addresses were registered: long enough ago that a code sent there
/// counts (recently added contact points do not).
const LONG_AGO: &str = "2024-01-15T10:00:00Z";

/// A server with a file sink for email, a tenant and an integration key.
struct Desk {
    base: String,
    key: String,
    client: reqwest::Client,
    state: AppState,
    sink: PathBuf,
    _sink_dir: tempfile::TempDir,
}

/// A case in `verifying` and the code its customer received.
#[derive(Clone)]
struct Pending {
    case: String,
    code: String,
}

async fn desk(store: Arc<dyn Store>) -> anyhow::Result<Desk> {
    let sink_dir = tempfile::tempdir()?;
    let sink = sink_dir.path().join("messages.jsonl");
    let file: Arc<dyn regain_delivery::Transport> = Arc::new(regain_delivery::FileSink::open(&sink)?);
    let (base, state) = serve_with(store, regain_delivery::Router::new(Some(file), None), false).await?;
    let tenant = create_tenant_record(
        &state,
        serde_json::from_value::<CreateTenant>(json!({"slug": "bench", "display_name": "Bench"}))?,
        Actor::System,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (_, key) = create_api_key_record(&state, tenant.id, "bench", Some("integration"), Actor::System)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(1024).build()?;
    Ok(Desk { base, key, client, state, sink, _sink_dir: sink_dir })
}

impl Desk {
    async fn post(&self, path: &str, body: Value, status: u16) -> anyhow::Result<Value> {
        let response =
            self.client.post(format!("{}{path}", self.base)).bearer_auth(&self.key).json(&body).send().await?;
        let got = response.status().as_u16();
        let text = response.text().await?;
        anyhow::ensure!(got == status, "POST {path}: {got} {text}");
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Customer `name`, a password-reset case for them, identified, a code sent to their email:
    /// returns the case id.
    async fn verifying_case(&self, name: &str) -> anyhow::Result<String> {
        let customer = json!({
            "external_id": format!("crm-{name}"),
            "username": name,
            "account_number": format!("AC-{name}"),
            "full_name": "Jane Q. Doe",
            "emails": [{"address": format!("{name}@example.com"), "verified": true, "added_at": LONG_AGO}],
        });
        self.post("/api/v1/customers", customer, 201).await?;
        let case = self
            .post("/api/v1/cases", json!({"kind": "password_reset", "channel": "phone", "summary": "bench"}), 201)
            .await?;
        let id = case["id"].as_str().ok_or_else(|| anyhow::anyhow!("no case id: {case}"))?.to_owned();
        self.post(&format!("/api/v1/cases/{id}/start-identification"), json!({}), 200).await?;
        let answer = self
            .post(
                &format!("/api/v1/cases/{id}/identification"),
                json!({"full_name": "Jane Q. Doe", "account_number": format!("AC-{name}")}),
                200,
            )
            .await?;
        anyhow::ensure!(answer["outcome"] == "identified", "identification: {answer}");
        self.post(&format!("/api/v1/cases/{id}/verification/send"), json!({"contact": "email-0"}), 200).await?;
        Ok(id)
    }

    /// `n` verifying cases with their codes, delivered through the outbox and read back from
    /// the sink. Progress goes to stderr.
    async fn prepare(&self, batch: &str, n: usize) -> anyhow::Result<Vec<Pending>> {
        let started = Instant::now();
        let done = AtomicUsize::new(0);
        let cases: Vec<anyhow::Result<(String, String)>> = futures::stream::iter(0..n)
            .map(|i| {
                let done = &done;
                async move {
                    let name = format!("b3-{batch}-{i}");
                    let case = self.verifying_case(&name).await?;
                    let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if finished.is_multiple_of(1_000) {
                        eprintln!(
                            "  B3 setup {batch}: {finished}/{n} cases ({:.0} s)",
                            started.elapsed().as_secs_f64()
                        );
                    }
                    Ok((format!("{name}@example.com"), case))
                }
            })
            .buffer_unordered(SETUP_CLIENTS)
            .collect()
            .await;
        let cases = cases.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
        // The outbox worker is off (a second claimer beside it deadlocks on PostgreSQL): the
        // messages are sent here, as the tests do.
        let mut codes = HashMap::new();
        for _ in 0..100 {
            regain_server::outbox::drain(&self.state, n / regain_server::outbox::BATCH as usize + 10)
                .await
                .map_err(|e| anyhow::anyhow!("outbox: {e}"))?;
            codes = regain_delivery::read_sink(&self.sink)?
                .into_iter()
                .filter_map(|m| match m.to {
                    regain_delivery::Address::Email(to) => code_in(&m.body).map(|code| (to, code)),
                    regain_delivery::Address::Sms(_) => None,
                })
                .collect::<HashMap<_, _>>();
            if cases.iter().all(|(to, _)| codes.contains_key(to)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let pending = cases
            .into_iter()
            .map(|(to, case)| {
                let code = codes.get(&to).cloned().ok_or_else(|| anyhow::anyhow!("no code delivered to {to}"))?;
                Ok(Pending { case, code })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        eprintln!("  B3 setup {batch}: {n} cases with codes delivered in {:.0} s", started.elapsed().as_secs_f64());
        Ok(pending)
    }

    /// A redemption of `p`'s code; true when it passed.
    fn redeem(&self, p: &Pending) -> impl std::future::Future<Output = bool> + Send + 'static {
        let request = self
            .client
            .post(format!("{}/api/v1/cases/{}/verification/code", self.base, p.case))
            .bearer_auth(&self.key)
            .json(&json!({"code": p.code}));
        async move {
            match request.send().await {
                // The whole body is read: the request is done when the client has the answer.
                Ok(r) => r.status().as_u16() == 200 && r.bytes().await.is_ok(),
                Err(_) => false,
            }
        }
    }
}

/// The six-digit code in a message's text.
fn code_in(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.windows(6).find(|w| w.iter().all(char::is_ascii_digit)).map(|w| w.iter().collect())
}

/// What B3 measured on one store.
struct Figures {
    load: f64,
    closed: Measured,
    open: OpenLoop,
}

/// Refreshes PostgreSQL's statistics after a setup, as autovacuum would on a default server
/// (the one here runs with autovacuum off). Without it the server's cached plans, made while the
/// tables were nearly empty, are never replanned.
async fn analyze(pg: Option<&sqlx::PgPool>) -> anyhow::Result<()> {
    if let Some(pool) = pg {
        sqlx::query("ANALYZE").execute(pool).await?;
    }
    Ok(())
}

async fn measure(
    store: Arc<dyn Store>,
    window: Duration,
    clients: usize,
    load: f64,
    pg: Option<&sqlx::PgPool>,
) -> anyhow::Result<Figures> {
    let desk = Arc::new(desk(store).await?);
    let seconds = window.as_secs_f64();
    let closed_cases = ((CLOSED_LOOP_RATE_MAX * seconds).ceil() as usize).clamp(1, CASES_MAX);
    let batch = Arc::new(desk.prepare("closed", closed_cases).await?);
    analyze(pg).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let closed = {
        let (desk, batch, next) = (desk.clone(), batch.clone(), next.clone());
        closed_loop_while(clients, window, move |_| {
            let p = batch.get(next.fetch_add(1, Ordering::Relaxed)).cloned();
            let redeem = p.map(|p| desk.redeem(&p));
            async move {
                match redeem {
                    Some(r) => Some(r.await),
                    None => None,
                }
            }
        })
        .await
    };
    if next.load(Ordering::Relaxed) >= batch.len() {
        eprintln!(
            "  B3: the closed loop used all {} prepared cases in {:.1} s (of {seconds:.1} s)",
            batch.len(),
            closed.elapsed.as_secs_f64()
        );
    }

    let rate = load * closed.rate();
    let count = ((rate * seconds).ceil() as usize).clamp(1, CASES_MAX);
    let batch = Arc::new(desk.prepare("open", count).await?);
    analyze(pg).await?;
    let open = {
        let (desk, batch) = (desk.clone(), batch.clone());
        open_loop(rate, count, move |i| desk.redeem(&batch[i])).await
    };
    Ok(Figures { load, closed, open })
}

/// The raw cost of the check: keyed hash of the presented code, constant-time compare with the
/// stored hash returned by a single-row UPDATE, one commit. `rows` codes are stored first.
macro_rules! raw_check {
    ($name:ident, $db:ty) => {
        async fn $name(
            pool: sqlx::Pool<$db>,
            window: Duration,
            clients: usize,
            rows: usize,
        ) -> anyhow::Result<Measured> {
            let (keyring, _) = Keyring::create(MasterKey::generate());
            let keyring = Arc::new(keyring);
            let tenant = TenantId::generate(&regain_server::sys::SystemClock, &regain_server::sys::OsEntropy);
            sqlx::query(
                "CREATE TABLE raw_codes (id BIGINT PRIMARY KEY, secret_hash TEXT NOT NULL, state TEXT NOT NULL, \
                 attempts BIGINT NOT NULL)",
            )
            .execute(&pool)
            .await?;
            for chunk in (0..rows).collect::<Vec<_>>().chunks(1_000) {
                let mut tx = pool.begin().await?;
                for &id in chunk {
                    sqlx::query(
                        "INSERT INTO raw_codes (id, secret_hash, state, attempts) VALUES ($1, $2, 'pending', 0)",
                    )
                    .bind(id as i64)
                    .bind(code_hash(&keyring, tenant, &id.to_string(), &raw_code(id)))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
            }
            let next = Arc::new(AtomicUsize::new(0));
            Ok(closed_loop_while(clients, window, move |_| {
                let (pool, keyring) = (pool.clone(), keyring.clone());
                let id = next.fetch_add(1, Ordering::Relaxed);
                async move {
                    if id >= rows {
                        return None;
                    }
                    let check = async {
                        let mut tx = pool.begin().await?;
                        let stored: Option<String> = sqlx::query_scalar(
                            "UPDATE raw_codes SET attempts = attempts + 1, state = 'used' \
                             WHERE id = $1 AND state = 'pending' RETURNING secret_hash",
                        )
                        .bind(id as i64)
                        .fetch_optional(&mut *tx)
                        .await?;
                        let presented = code_hash(&keyring, tenant, &id.to_string(), &raw_code(id));
                        let right = stored.is_some_and(|s| hashes_equal(&presented, &s));
                        tx.commit().await?;
                        Ok::<bool, sqlx::Error>(right)
                    };
                    Some(check.await.unwrap_or(false))
                }
            })
            .await)
        }
    };
}

fn raw_code(id: usize) -> String {
    format!("{:06}", (id * 7_919) % 1_000_000)
}

raw_check!(raw_check_sqlite, sqlx::Sqlite);
raw_check!(raw_check_postgres, sqlx::Postgres);

fn line(name: &str, f: &Figures, baseline_what: &str, baseline: &Measured) -> String {
    let (closed, open) = (&f.closed, &f.open);
    let failed = |m: &Measured| if m.failed > 0 { format!(", {} failed", m.failed) } else { String::new() };
    let p99 = open.corrected.percentile_ms(0.99);
    format!(
        "{name}: max {:.0} redemptions/s closed loop ({:.1} s, p50 {:.1} ms, p99 {:.1} ms{}) | open loop at {:.0}/s \
         ({:.0} %): {:.0}/s achieved, latency-corrected p50 {:.2} ms, p99 {:.2} ms (from send: p50 {:.2} ms, p99 {:.2} ms; \
         generator late by up to {:.1} ms{}) | baseline {:.0} {baseline_what}/s | ratio {:.1} % | target p99 <= {P99_TARGET_MS} ms: {}",
        closed.rate(),
        closed.elapsed.as_secs_f64(),
        closed.percentile_ms(0.5),
        closed.percentile_ms(0.99),
        failed(closed),
        open.target_rate,
        100.0 * f.load,
        open.corrected.rate(),
        open.corrected.percentile_ms(0.5),
        p99,
        open.uncorrected.percentile_ms(0.5),
        open.uncorrected.percentile_ms(0.99),
        open.late_max_us as f64 / 1000.0,
        failed(&open.corrected),
        baseline.rate(),
        100.0 * closed.rate() / baseline.rate().max(f64::MIN_POSITIVE),
        if (f.load - LOAD_FRACTION).abs() > 1e-9 {
            "applies at 80 % load"
        } else if open.corrected.failed == 0 && p99 <= P99_TARGET_MS {
            "met"
        } else {
            "missed"
        },
    )
}

fn raw_rows(window: Duration) -> usize {
    ((window.as_secs_f64() * 20_000.0).ceil() as usize).clamp(1_000, 2_000_000)
}

/// B3 on SQLite (WAL, synchronous=FULL).
pub async fn code_sqlite(window: Duration, clients: usize, load: f64) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    let store = sqlite_store(&dir, "regain.db").await?;
    let figures = measure(Arc::new(store), window, clients, load, None).await?;
    let raw = sqlite_store(&dir, "raw.db").await?;
    let baseline = raw_check_sqlite(raw.writer_pool().clone(), window, clients, raw_rows(window)).await?;
    Ok(line(
        "B3 code verification, HTTP, SQLite WAL+FULL",
        &figures,
        "raw hash compares + single-row commits",
        &baseline,
    ))
}

/// B3 on PostgreSQL, its baseline on the store's own pool; with `analyze_after_setup`, the
/// statistics are refreshed after each setup (see [`analyze`]).
pub async fn code_postgres(
    admin_url: &str,
    window: Duration,
    clients: usize,
    load: f64,
    analyze_after_setup: bool,
) -> anyhow::Result<String> {
    let name = format!("regain_bench_code_{}", std::process::id());
    let (store, mut admin) = crate::scenarios::scratch_postgres(admin_url, &name).await?;
    let pool = store.pool().clone();
    let measured = async {
        let figures = measure(Arc::new(store), window, clients, load, analyze_after_setup.then_some(&pool)).await?;
        let baseline = raw_check_postgres(pool.clone(), window, clients, raw_rows(window)).await?;
        anyhow::Ok((figures, baseline))
    }
    .await;
    pool.close().await;
    pool_close(&mut admin, &name).await;
    let (figures, baseline) = measured?;
    let name = if analyze_after_setup {
        "B3 code verification, HTTP, PostgreSQL (ANALYZE after setup)"
    } else {
        "B3 code verification, HTTP, PostgreSQL (no ANALYZE)"
    };
    Ok(line(name, &figures, "raw hash compares + single-row commits", &baseline))
}
