//! The demo's delivery: every message appended to a file, one JSON line each,
//! so a person trying `regain demo` can read the codes that would have been sent.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::Mutex;

use crate::{Address, Channel, ConfigError, Message, SendError, Transport};

/// Appends each message, email or SMS, to a file as one JSON line:
/// `{"id", "channel", "to", "subject", "body", "at"}`, where `channel` is
/// `"email"` or `"sms"` and `at` is the time of writing in RFC 3339 (UTC).
///
/// The file holds live codes, so on unix it is readable by its owner only
/// (mode 0600), also when it existed before. Never configure it outside a demo
/// or a test.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    file: Mutex<tokio::fs::File>,
}

/// One message as read back from a sink file by [`read_sink`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkedMessage {
    /// The outbox id.
    pub id: String,
    /// The recipient.
    pub to: Address,
    /// The subject (empty for most SMS).
    pub subject: String,
    /// The body.
    pub body: String,
    /// When it was written, RFC 3339 in UTC.
    pub at: String,
}

/// One line of the sink file.
#[derive(Serialize, Deserialize)]
struct SinkLine {
    id: String,
    channel: String,
    to: String,
    subject: String,
    body: String,
    at: String,
}

impl FileSink {
    /// Opens `path` for appending, creating it (mode 0600 on unix) if needed.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, ConfigError> {
        let path = path.into();
        let file = open_append(&path).map_err(|source| ConfigError::Sink { path: path.clone(), source })?;
        Ok(FileSink { path, file: Mutex::new(tokio::fs::File::from_std(file)) })
    }

    /// The sink file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(unix)]
fn open_append(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let file = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
    // `mode` applies only to a new file; an older one is narrowed too.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

#[cfg(not(unix))]
fn open_append(path: &Path) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new().create(true).append(true).open(path)
}

#[async_trait::async_trait]
impl Transport for FileSink {
    async fn send(&self, message: &Message) -> Result<(), SendError> {
        let line = SinkLine {
            id: message.id.clone(),
            channel: message.to.channel().as_str().to_owned(),
            to: message.to.as_str().to_owned(),
            subject: message.subject.clone(),
            body: message.body.clone(),
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        let mut bytes = serde_json::to_vec(&line).map_err(|e| SendError::Permanent(format!("file sink: {e}")))?;
        bytes.push(b'\n');
        // One write of the whole line under the lock: lines never interleave.
        let mut file = self.file.lock().await;
        file.write_all(&bytes).await.map_err(|e| SendError::Retryable(format!("file sink: {e}")))?;
        file.flush().await.map_err(|e| SendError::Retryable(format!("file sink: {e}")))
    }

    fn name(&self) -> &'static str {
        "file-sink"
    }
}

/// Every message in the sink file at `path`, oldest first. A file that does
/// not exist yet holds no messages; a line that is not a sink line is an
/// [`io::ErrorKind::InvalidData`] error naming its line number.
pub fn read_sink(path: impl AsRef<Path>) -> io::Result<Vec<SinkedMessage>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut messages = Vec::new();
    for (index, line) in text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty()) {
        let invalid =
            |why: String| io::Error::new(io::ErrorKind::InvalidData, format!("sink line {}: {why}", index + 1));
        let line: SinkLine = serde_json::from_str(line).map_err(|e| invalid(e.to_string()))?;
        let to = match line.channel.as_str() {
            "email" => Address::Email(line.to),
            "sms" => Address::Sms(line.to),
            other => return Err(invalid(format!("unknown channel `{other}`"))),
        };
        messages.push(SinkedMessage { id: line.id, to, subject: line.subject, body: line.body, at: line.at });
    }
    Ok(messages)
}

impl SinkedMessage {
    /// The channel the message was sent on.
    pub fn channel(&self) -> Channel {
        self.to.channel()
    }
}
