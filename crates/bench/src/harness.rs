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
    closed_loop_while(clients, window, move |n| {
        let done = op(n);
        async move { Some(done.await) }
    })
    .await
}

/// [`closed_loop`] over a limited supply: `op` returns `None` when there is nothing left to do,
/// which ends that client's loop. The measurement ends when the window has passed or every
/// client has stopped, whichever comes first; `elapsed` is the time until then.
pub async fn closed_loop_while<F, Fut>(clients: usize, window: Duration, op: F) -> Measured
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<bool>> + Send,
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
                match op(n).await {
                    Some(true) => {
                        ok += 1;
                        latencies.push(t.elapsed().as_micros() as u64);
                    }
                    Some(false) => failed += 1,
                    None => break,
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

/// What an open-loop run measured: latencies from each request's *scheduled* start (corrected
/// for coordinated omission: a request the generator or the server held up counts its wait) and,
/// beside them, from when it was actually sent.
#[derive(Debug, Clone)]
pub struct OpenLoop {
    /// The schedule's rate, requests per second.
    pub target_rate: f64,
    /// Successful requests, with latencies from the scheduled start.
    pub corrected: Measured,
    /// The same requests, latencies from the actual send.
    pub uncorrected: Measured,
    /// The largest delay between a request's scheduled and actual start, in microseconds.
    pub late_max_us: u64,
}

/// Issues `count` requests on a fixed schedule, one every 1/`rate` s, whatever the earlier ones
/// are doing (open loop), each as its own task. `op(i)` performs request `i`. The schedule is
/// kept by a thread of its own with the OS's timers (tokio's timer wheel rounds to whole
/// milliseconds, which would count up to a millisecond of the generator's slack as latency).
pub async fn open_loop<F, Fut>(rate: f64, count: usize, op: F) -> OpenLoop
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let interval = Duration::from_secs_f64(1.0 / rate.max(f64::MIN_POSITIVE));
    let runtime = tokio::runtime::Handle::current();
    let started = Instant::now();
    let dispatch = tokio::task::spawn_blocking(move || {
        let mut tasks = Vec::with_capacity(count);
        for i in 0..count {
            let scheduled = started + interval.mul_f64(i as f64);
            if let Some(wait) = scheduled.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let request = op(i);
            tasks.push(runtime.spawn(async move {
                let sent = Instant::now();
                let ok = request.await;
                let done = Instant::now();
                (ok, done - scheduled, done - sent, sent - scheduled, done)
            }));
        }
        tasks
    });
    let tasks = dispatch.await.unwrap_or_default();
    let mut corrected = Measured { ok: 0, failed: 0, elapsed: Duration::ZERO, latencies_us: Vec::new() };
    let mut uncorrected = corrected.clone();
    let (mut late_max, mut last) = (Duration::ZERO, started);
    for (ok, from_schedule, from_send, late, done) in futures::future::join_all(tasks).await.into_iter().flatten() {
        late_max = late_max.max(late);
        last = last.max(done);
        if ok {
            corrected.ok += 1;
            corrected.latencies_us.push(from_schedule.as_micros() as u64);
            uncorrected.latencies_us.push(from_send.as_micros() as u64);
        } else {
            corrected.failed += 1;
        }
    }
    corrected.elapsed = last - started;
    corrected.latencies_us.sort_unstable();
    uncorrected.latencies_us.sort_unstable();
    uncorrected.ok = corrected.ok;
    uncorrected.failed = corrected.failed;
    uncorrected.elapsed = corrected.elapsed;
    OpenLoop { target_rate: rate, corrected, uncorrected, late_max_us: late_max.as_micros() as u64 }
}

/// A real server on a free loopback port; returns its base URL and state.
pub async fn serve(store: Arc<dyn Store>) -> anyhow::Result<(String, AppState)> {
    serve_with(store, regain_delivery::Router::new(None, None), true).await
}

/// [`serve`] with the given message transports, and with or without the outbox worker (without
/// it, the caller sends what is due with `regain_server::outbox::drain`).
pub async fn serve_with(
    store: Arc<dyn Store>,
    delivery: regain_delivery::Router,
    outbox_worker: bool,
) -> anyhow::Result<(String, AppState)> {
    // Dropping the handle leaves the server running for the rest of the process.
    let (base, state, _running) = serve_stoppable(store, delivery, outbox_worker).await?;
    Ok((base, state))
}

/// A server [`serve_stoppable`] started; [`Running::stop`] ends it and its background work,
/// and dropping it leaves it running.
pub struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops serving and the background workers (outbox, sequencer, sweeper), and waits until
    /// they have ended, so what is measured next has the cores to itself.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.served.await??;
        Ok(())
    }
}

/// [`serve_with`], with a handle that stops the server.
pub async fn serve_stoppable(
    store: Arc<dyn Store>,
    delivery: regain_delivery::Router,
    outbox_worker: bool,
) -> anyhow::Result<(String, AppState, Running)> {
    let mut config =
        ServerConfig { listen: "127.0.0.1:0".parse()?, expiry_sweep_interval_ms: 0, ..ServerConfig::default() };
    if !outbox_worker {
        config.outbox_interval_ms = 0;
    }
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
        delivery: Arc::new(delivery),
        risk: Arc::new(regain_server::risk::RiskEngine::without_providers()),
    };
    let app = Application::build(state.clone()).await?;
    let base = format!("http://{}", app.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(app.run_until(async move {
        if stopped.await.is_err() {
            std::future::pending::<()>().await;
        }
    }));
    Ok((base, state, Running { stop, served }))
}

/// Peak resident memory of this process so far (Linux), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Where this process's threads have spent CPU so far (Linux), grouped by what they do, and how
/// often they have been switched off a core.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadCpu {
    /// Seconds in the password hashing workers (`argon2-*`).
    pub hashing: f64,
    /// Seconds in SQLite's connection threads (`sqlx-sqlite-*`).
    pub sqlite: f64,
    /// Seconds in the load generator's thread, as [`on_load_thread`] reads it (zero in a snapshot).
    pub load: f64,
    /// Seconds in every other thread: the async runtime's workers (the HTTP server, the
    /// background workers) and the rest.
    pub runtime: f64,
    /// Context switches, voluntary and not, of every thread but the load generator's.
    pub switches: u64,
}

impl ThreadCpu {
    /// The figures now.
    pub fn now() -> Option<ThreadCpu> {
        let mut cpu = ThreadCpu::default();
        for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
            let path = task.path();
            let (Ok(comm), Ok(status), Some(seconds)) = (
                std::fs::read_to_string(path.join("comm")),
                std::fs::read_to_string(path.join("status")),
                task_cpu_seconds(&path),
            ) else {
                continue;
            };
            let comm = comm.trim_end();
            if comm.starts_with(LOAD_THREAD) {
                // Read by [`on_load_thread`] as that thread ends.
                continue;
            }
            cpu.switches += status
                .lines()
                .filter(|l| l.starts_with("voluntary_ctxt_switches:") || l.starts_with("nonvoluntary_ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
            if comm.starts_with("argon2-") {
                cpu.hashing += seconds;
            } else if comm.starts_with("sqlx-sqlite") {
                cpu.sqlite += seconds;
            } else {
                cpu.runtime += seconds;
            }
        }
        Some(cpu)
    }

    /// What was spent between `earlier` and `self`.
    pub fn since(&self, earlier: &ThreadCpu) -> ThreadCpu {
        ThreadCpu {
            hashing: self.hashing - earlier.hashing,
            sqlite: self.sqlite - earlier.sqlite,
            load: self.load - earlier.load,
            runtime: self.runtime - earlier.runtime,
            switches: self.switches.saturating_sub(earlier.switches),
        }
    }
}

/// The name of the load generator's thread.
const LOAD_THREAD: &str = "load-gen";

/// Runs `work` on a thread of its own with a single-threaded async runtime, so the load
/// generator's CPU is told apart from the server's and its tasks never run on the server's
/// runtime workers (as a client on another machine would not). Returns what `work` gave and
/// the CPU seconds the thread used, read as it ends.
pub async fn on_load_thread<F, Fut, T>(work: F) -> anyhow::Result<(T, Option<f64>)>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new().name(LOAD_THREAD.to_owned()).spawn(move || {
        let outcome = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|runtime| {
                let out = runtime.block_on(work());
                // The runtime's own tasks (the client's connections) end with it.
                drop(runtime);
                (out, task_cpu_seconds(std::path::Path::new("/proc/thread-self")))
            })
            .map_err(anyhow::Error::from);
        let _ = done.send(outcome);
    })?;
    result.await.map_err(|_| anyhow::anyhow!("the load generator's thread ended without a result"))?
}

/// CPU seconds (user and system) of the task whose `/proc` directory is `path`.
fn task_cpu_seconds(path: &std::path::Path) -> Option<f64> {
    // Clock ticks per second, as the kernel reports `utime` and `stime` in /proc.
    const TICKS: f64 = 100.0;
    let stat = std::fs::read_to_string(path.join("stat")).ok()?;
    // Fields after the parenthesised name: state is the 3rd field, utime the 14th, stime the 15th.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / TICKS)
}
