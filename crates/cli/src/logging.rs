//! Logging: JSON lines to stdout for `serve` (what log collectors read), text to stderr for
//! every other command, so their stdout carries only their result and can be piped.

use std::io::IsTerminal as _;

use anyhow::Context as _;
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSection};

/// Where a command's logs go and how they look when the configuration says `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// A long-running service: JSON to stdout by default.
    Service,
    /// A command a person runs: text to stderr by default; stdout is the result.
    Command,
}

/// Installs the global subscriber. `RUST_LOG`, when set, replaces `log.level`.
pub fn init(log: &LogSection, audience: Audience) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => {
            EnvFilter::try_new(&value).context("RUST_LOG is not a valid filter")?
        }
        _ => level_filter(&log.level)?,
    };
    let format = match (log.format, audience) {
        (LogFormat::Auto, Audience::Service) => LogFormat::Json,
        (LogFormat::Auto, Audience::Command) => LogFormat::Text,
        (chosen, _) => chosen,
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match (format, audience) {
        (LogFormat::Json, Audience::Service) => {
            builder.json().with_current_span(true).with_span_list(false).with_writer(std::io::stdout).try_init()
        }
        (LogFormat::Json, Audience::Command) => {
            builder.json().with_current_span(true).with_span_list(false).with_writer(std::io::stderr).try_init()
        }
        (_, Audience::Service) => {
            builder.with_writer(std::io::stdout).with_ansi(std::io::stdout().is_terminal()).try_init()
        }
        (_, Audience::Command) => {
            builder.with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal()).try_init()
        }
    };
    result.map_err(|e| anyhow::anyhow!("installing the logger: {e}"))
}

/// The filter `log.level` describes; an error names the key.
pub fn level_filter(level: &str) -> anyhow::Result<EnvFilter> {
    EnvFilter::try_new(level).map_err(|e| anyhow::anyhow!("log.level {level:?} is not a valid filter: {e}"))
}
