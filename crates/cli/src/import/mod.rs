//! `regain customer import`: customer records from a CSV or JSON-lines file, each row through
//! `create_customer_record` (the API's one validation path). A bad row never stops the good
//! ones; a database that stops answering stops the import, since every row after would fail
//! the same way.

mod source;

use std::io::{IsTerminal as _, Write as _};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use regain_core::Actor;
use regain_server::error::ApiError;
use regain_server::routes::customers::create_customer_record;

use crate::cli::{ImportArgs, ImportFormat};
use crate::config::Config;
use crate::context::{Context, Schema};
pub use source::RowError;

/// Exit status when the import ran but some rows failed.
const EXIT_SOME_FAILED: u8 = 2;

pub async fn run(config: &Config, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let format = match args.format {
        Some(format) => format,
        None => format_from_extension(&args.file)?,
    };
    let is_csv = format == ImportFormat::Csv;
    // Fail on an unreadable file or a bad header before opening the database.
    let rows = if is_csv { source::csv_rows(&args.file)? } else { source::jsonl_rows(&args.file)? };
    let total = source::count_rows(&args.file, is_csv)?;
    let ctx = Context::open(config, Schema::RequireCurrent).await?;
    ctx.require_personal_data()?;
    let tenant = crate::admin::tenant_by_slug(&ctx.state, &args.tenant).await?;
    let region = tenant.settings.default_region.clone();

    let bar = progress_bar(total);
    let mut imported = 0u64;
    let mut failures: Vec<RowError> = Vec::new();
    let mut fatal = None;
    for row in rows {
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                fatal = Some(e);
                break;
            }
        };
        match row {
            Err(error) => failures.push(error),
            Ok((line, input)) => {
                match create_customer_record(&ctx.state, tenant.id, &region, &input, Actor::System).await {
                    Ok(_) => imported += 1,
                    Err(e @ (ApiError::Unavailable(_) | ApiError::Internal(_))) => {
                        fatal = Some(anyhow::anyhow!("line {line}: {e}"));
                        break;
                    }
                    Err(e) => failures.push(row_error(line, &e, is_csv)),
                }
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    ctx.backend.close().await;

    let mut stderr = std::io::stderr().lock();
    for f in &failures {
        writeln!(stderr, "line {}: {}: {}", f.line, f.field, f.message)?;
    }
    if let Some(path) = &args.report {
        write_report(path, &failures)?;
    }
    println!("{imported} imported, {} failed", failures.len());
    if let Some(error) = fatal {
        return Err(error.context("the import stopped; the rows above were handled"));
    }
    Ok(if failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_SOME_FAILED) })
}

fn format_from_extension(path: &Path) -> anyhow::Result<ImportFormat> {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("csv") => Ok(ImportFormat::Csv),
        Some("jsonl" | "ndjson" | "json") => Ok(ImportFormat::Jsonl),
        _ => bail!(
            "cannot tell the format of {} from its extension; pass --format csv or --format jsonl",
            path.display()
        ),
    }
}

/// A progress bar on stderr, only when a person is watching it.
fn progress_bar(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} rows  {rate}  eta {eta}") {
        bar.set_style(style.with_key("rate", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.0} rows/s", state.per_sec());
        }));
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// The failure as `field: message`. CSV files name columns, not the API's field paths, so
/// `emails/1` becomes `email#2` there.
fn row_error(line: u64, error: &ApiError, csv: bool) -> RowError {
    let problem = error.problem();
    let (field, message) = match problem.errors.into_iter().next() {
        Some(e) => (e.field, e.message),
        None => ("record".to_owned(), problem.detail),
    };
    let field = if csv { csv_column(&field) } else { field };
    RowError::new(line, field, message)
}

fn csv_column(field: &str) -> String {
    let (base, index) = match field.split_once('/') {
        Some((base, index)) => (base, index.parse::<usize>().ok()),
        None => (field, None),
    };
    let column = match base {
        "emails" => "email",
        "phones" => "phone",
        "factors" => "recovery_codes_remaining",
        other => other,
    };
    match index {
        Some(i) if i > 0 => format!("{column}#{}", i + 1),
        _ => column.to_owned(),
    }
}

fn write_report(path: &Path, failures: &[RowError]) -> anyhow::Result<()> {
    let mut out = String::new();
    for f in failures {
        out.push_str(&serde_json::to_string(f).context("writing the report")?);
        out.push('\n');
    }
    std::fs::write(path, out).with_context(|| format!("writing the report {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_fields_become_csv_columns() {
        for (field, column) in [
            ("emails/0", "email"),
            ("emails/1", "email#2"),
            ("phones/0", "phone"),
            ("phones", "phone"),
            ("username", "username"),
            ("factors", "recovery_codes_remaining"),
        ] {
            assert_eq!(csv_column(field), column);
        }
    }
}
