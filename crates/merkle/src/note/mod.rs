//! Checkpoints as C2SP signed notes (c2sp.org/signed-note, c2sp.org/tlog-checkpoint).
//!
//! A checkpoint is the log's signed statement "my tree of `size` entries has this
//! root". Using the signed-note format rather than an ad-hoc one means standard
//! transparency tooling (witnesses, the Go `sumdb/note` package, monitors) can
//! verify our checkpoints without any Regain-specific code.

mod signed;

pub use signed::{open, NoteSigner, NoteVerifier};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::Hash;

/// Why a note, a key or a checkpoint was rejected.
#[derive(Debug, thiserror::Error)]
pub enum NoteError {
    /// The note, its body or the checkpoint text does not follow the format.
    #[error("malformed note: {0}")]
    Malformed(String),
    /// A key name or verifier key is invalid.
    #[error("bad key: {0}")]
    BadKey(String),
    /// No signature line by the verifier's key was found.
    #[error("no valid signature by the expected key")]
    NoValidSignature,
    /// A signature line by the verifier's key (same name and key id) does not
    /// verify: the note was altered or forged.
    #[error("signature by the expected key does not verify")]
    BadSignature,
}

/// The body of a C2SP tlog-checkpoint: origin, tree size, root, and optional
/// extension lines.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Checkpoint {
    /// Identifies the log; must be one non-empty line (ideally the signer's key name).
    pub origin: String,
    /// Number of leaves in the tree.
    pub size: u64,
    /// RFC 9162 root of the tree at `size`.
    pub root: Hash,
    /// Opaque extension lines after the root, each non-empty. We write none, but
    /// keep those we parse so a re-encoded body is byte-identical to the signed one.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note body: `"<origin>\n<size>\n<base64 root>\n"` then one line per extension.
    ///
    /// The fields are not re-validated here; [`NoteSigner::sign`] rejects bodies that
    /// could not be signed and [`Checkpoint::parse_body`] is the strict direction.
    pub fn body(&self) -> String {
        let mut out = format!("{}\n{}\n{}\n", self.origin, self.size, STANDARD.encode(self.root));
        for line in &self.extensions {
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    /// Parses a checkpoint body strictly: at least three non-empty lines, a decimal
    /// size without sign or leading zeros, a canonical base64 root of exactly 32
    /// bytes, and a final newline. Anything else is [`NoteError::Malformed`],
    /// because a lenient parser is how two readers end up disagreeing on what a
    /// signature covered.
    pub fn parse_body(text: &str) -> Result<Self, NoteError> {
        let malformed = |why: &str| NoteError::Malformed(format!("checkpoint: {why}"));
        let content = text.strip_suffix('\n').ok_or_else(|| malformed("must end with a newline"))?;
        if content.chars().any(|c| c < ' ' && c != '\n') {
            return Err(malformed("control character"));
        }
        let mut lines = content.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next()) else {
            return Err(malformed("needs origin, size and root lines"));
        };
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if origin.is_empty() || extensions.iter().any(String::is_empty) {
            return Err(malformed("empty line"));
        }
        Ok(Checkpoint { origin: origin.to_owned(), size: parse_size(size)?, root: parse_root(root)?, extensions })
    }
}

/// ASCII decimal, no sign, no leading zeros (except "0" itself), fits in u64.
fn parse_size(line: &str) -> Result<u64, NoteError> {
    let canonical =
        !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit()) && (line.len() == 1 || !line.starts_with('0'));
    if !canonical {
        return Err(NoteError::Malformed("checkpoint: size is not a canonical decimal".into()));
    }
    line.parse().map_err(|_| NoteError::Malformed("checkpoint: size overflows".into()))
}

/// Standard padded base64 of exactly 32 bytes. The engine rejects non-zero
/// trailing bits, so only the canonical encoding is accepted.
fn parse_root(line: &str) -> Result<Hash, NoteError> {
    let bytes = STANDARD.decode(line).map_err(|_| NoteError::Malformed("checkpoint: root is not base64".into()))?;
    Hash::try_from(bytes.as_slice()).map_err(|_| NoteError::Malformed("checkpoint: root is not 32 bytes".into()))
}
