//! The error types of this crate.

use std::path::PathBuf;

/// Why one delivery attempt failed, and whether another attempt may succeed.
///
/// The text says what went wrong (a reply code, an HTTP status, a provider's
/// error code) but never the recipient or the message body, so it can be
/// stored on the outbox row and logged.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later: a 4xx SMTP reply, HTTP 429 or 5xx, a
    /// timeout, a connection that could not be made or broke.
    #[error("delivery failed, will retry: {0}")]
    Retryable(String),
    /// Trying again cannot help: a 5xx SMTP reply, an HTTP 4xx, an address
    /// the transport cannot use, no transport for the channel.
    #[error("delivery failed permanently: {0}")]
    Permanent(String),
}

impl SendError {
    /// Whether the outbox worker should schedule another attempt.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SendError::Retryable(_))
    }
}

/// A transport's settings are unusable; found when it is built, at startup.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A setting has a value that cannot work.
    #[error("invalid delivery setting `{setting}`: {reason}")]
    Invalid {
        /// The setting's name, as in the configuration file.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The sink file could not be opened or its permissions set.
    #[error("cannot open the message sink {path}: {source}")]
    Sink {
        /// The sink file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl ConfigError {
    pub(crate) fn invalid(setting: &'static str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid { setting, reason: reason.into() }
    }
}

/// A template could not be parsed or rendered. Parse errors name the template,
/// the part (`subject` or `body`) and the 1-based line and column (in
/// characters) where the problem starts, so a tenant editing a template can
/// find it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{{` without a matching `}}`.
    #[error("template `{template}`, {part} line {line} column {column}: `{{{{` is never closed by `}}}}`")]
    Unclosed {
        /// The template's name.
        template: String,
        /// `"subject"` or `"body"`.
        part: &'static str,
        /// 1-based line of the `{{`.
        line: usize,
        /// 1-based column of the `{{`, in characters.
        column: usize,
    },
    /// A placeholder that is not one of the names this template may use.
    #[error(
        "template `{template}`, {part} line {line} column {column}: unknown placeholder `{name}` (allowed: {allowed})"
    )]
    UnknownPlaceholder {
        /// The template's name.
        template: String,
        /// `"subject"` or `"body"`.
        part: &'static str,
        /// 1-based line of the `{{`.
        line: usize,
        /// 1-based column of the `{{`, in characters.
        column: usize,
        /// The name found between the braces.
        name: String,
        /// The allowed names, comma-separated.
        allowed: String,
    },
    /// A value the template uses was not given when rendering.
    #[error("template `{template}`: no value for placeholder `{name}`")]
    MissingValue {
        /// The template's name.
        template: String,
        /// The placeholder without a value.
        name: String,
    },
}
