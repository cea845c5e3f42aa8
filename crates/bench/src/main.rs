//! `regain-bench`: Regain's benchmarks, each printed on one line beside a raw baseline measured in
//! the same run on the same cores, as a ratio (design/PERFORMANCE.md). Run in release:
//!
//! ```text
//! cargo run --release -p regain-bench -- --seconds 10
//! REGAIN_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1/postgres cargo run --release -p regain-bench
//! ```

mod audit;
mod code;
mod harness;
mod reset;
mod risk;
mod scenarios;

use std::time::Duration;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "regain-bench", about = "Regain's benchmarks, each beside its raw baseline")]
struct Args {
    /// How long each measurement runs.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Concurrent HTTP clients for case creation, reset completion and code verification's
    /// closed loop.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Which scenarios: case-create, login, reset, code, audit, risk, or all.
    #[arg(long, default_value = "all")]
    scenario: String,
    /// Code verification's open-loop rate, as a fraction of the closed loop's maximum (B3 asks
    /// for 0.8).
    #[arg(long, default_value_t = code::LOAD_FRACTION)]
    code_load: f64,
    /// Code verification on PostgreSQL without refreshing the statistics after setup (for a
    /// server with autovacuum off, as here, the server's cached plans then stay as they were made
    /// on near-empty tables).
    #[arg(long)]
    code_pg_no_analyze: bool,
    /// Entries in the audit-log scenario's log (B4 asks for 10 million).
    #[arg(long, default_value_t = 1_000_000)]
    audit_entries: u64,
    /// A PostgreSQL server (its database is used only to create a scratch database) for the
    /// PostgreSQL rows; without it those rows are skipped.
    #[arg(long, env = "REGAIN_BENCH_POSTGRES_URL")]
    postgres: Option<String>,
    /// Internal: serve the prepared database at this path as B1's server process, driven over
    /// stdin and stdout by the bench that started it.
    #[arg(long, hide = true, value_name = "DATABASE")]
    serve_child: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // `REGAIN_BENCH_LOG=sqlx::query=debug` lists every statement a scenario runs, on stderr.
    if let Ok(filter) = std::env::var("REGAIN_BENCH_LOG") {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    if let Some(path) = args.serve_child {
        return reset::serve_child(path).await;
    }
    let window = Duration::from_secs_f64(args.seconds.max(0.1));
    let run = |name: &str| args.scenario == "all" || args.scenario == name;
    println!("# regain-bench: {:.1} s per measurement, {} cores", window.as_secs_f64(), harness::cores());
    if run("case-create") {
        println!("{}", scenarios::case_create_sqlite(window, args.concurrency).await?);
        if let Some(url) = &args.postgres {
            println!("{}", scenarios::case_create_postgres(url, window, args.concurrency).await?);
        }
    }
    if run("login") {
        println!("{}", scenarios::login(window).await?);
    }
    if run("reset") {
        println!("{}", reset::reset_sqlite(window, args.concurrency).await?);
    }
    if run("code") {
        println!("{}", code::code_sqlite(window, args.concurrency, args.code_load).await?);
        if let Some(url) = &args.postgres {
            println!(
                "{}",
                code::code_postgres(url, window, args.concurrency, args.code_load, !args.code_pg_no_analyze).await?
            );
        }
    }
    if run("risk") {
        println!("{}", risk::risk_sqlite(window).await?);
        if let Some(url) = &args.postgres {
            println!("{}", risk::risk_postgres(url, window).await?);
        }
    }
    if run("audit") {
        for line in audit::run(args.audit_entries.max(2), 1_000).await? {
            println!("{line}");
        }
    }
    Ok(())
}
