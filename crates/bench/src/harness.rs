//! Closed-loop load from N clients for a fixed window, with latency percentiles, and the raw
//! baselines.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use regain_server::{AppState, Application, ServerConfig};
use regain_store::Store;

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// What a load run measured.
#[derive(Debug, Clone)]
pub struct Measured {
    pub ok: u64,
    pub failed: u64,
    pub elapsed: Duration,
    /// Latencies of the successful operations, sorted, in microseconds.
    pub latencies_us: Vec<u64>,
}

impl Measured {
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let index = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[index.min(self.latencies_us.len() - 1)] as f64 / 1000.0
    }
}

/// Runs `op` from `clients` concurrent loops until `window` has passed.
pub async fn closed_loop<F, Fut>(clients: usize, window: Duration, op: F) -> Measured
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let deadline = started + window;
    let tasks = (0..clients.max(1)).map(|client| {
        let op = op.clone();
        tokio::spawn(async move {
            let (mut ok, mut failed, mut latencies) = (0u64, 0u64, Vec::new());
            let mut n = client as u64 * 1_000_000_000;
            while Instant::now() < deadline {
                let t = Instant::now();
                n += 1;
                if op(n).await {
                    ok += 1;
                    latencies.push(t.elapsed().as_micros() as u64);
                } else {
                    failed += 1;
                }
            }
            (ok, failed, latencies)
        })
    });
    let mut measured = Measured { ok: 0, failed: 0, elapsed: Duration::ZERO, latencies_us: Vec::new() };
    for result in futures::future::join_all(tasks).await.into_iter().flatten() {
        measured.ok += result.0;
        measured.failed += result.1;
        measured.latencies_us.extend(result.2);
    }
    measured.elapsed = started.elapsed();
    measured.latencies_us.sort_unstable();
    measured
}

/// A real server on a free loopback port; returns its base URL and state.
pub async fn serve(store: Arc<dyn Store>) -> anyhow::Result<(String, AppState)> {
    let config =
        ServerConfig { listen: "127.0.0.1:0".parse()?, expiry_sweep_interval_ms: 0, ..ServerConfig::default() };
    let workers = cores();
    let hasher = regain_hashing::HashingPool::start(regain_hashing::PoolConfig {
        workers,
        queue_max: 64 * workers,
        params: regain_hashing::Params::default(),
    })?;
    let state = AppState {
        store,
        hasher,
        clock: Arc::new(regain_server::sys::SystemClock),
        entropy: Arc::new(regain_server::sys::OsEntropy),
        config: Arc::new(config),
        audit: regain_server::audit::ephemeral("bench.regain/audit").map_err(anyhow::Error::msg)?,
        delivery: Arc::new(regain_delivery::Router::new(None, None)),
    };
    let app = Application::build(state.clone()).await?;
    let base = format!("http://{}", app.local_addr()?);
    tokio::spawn(app.run_until(std::future::pending()));
    Ok((base, state))
}

/// Peak resident memory of this process so far (Linux), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
