//! The error every parser at the edge returns: which field, and what is wrong with it.

use std::fmt;

/// A value that does not parse. `field` names the input (a JSON pointer-like path such as
/// `emails/0`), `message` says what is wrong in words a client developer can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }

    /// The same error, reported under a parent field: `emails` + `0` → `emails/0`.
    pub fn within(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() { parent.to_owned() } else { format!("{parent}/{}", self.field) };
        self
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Trims `value` and checks its length in characters (code points), for free-text fields.
pub fn bounded_text(field: &str, value: &str, min_chars: usize, max_chars: usize) -> Result<String, ValidationError> {
    let trimmed = value.trim();
    let chars = trimmed.chars().count();
    if chars < min_chars {
        return Err(ValidationError::new(
            field,
            if min_chars == 1 {
                "must not be empty".to_owned()
            } else {
                format!("must be at least {min_chars} characters")
            },
        ));
    }
    if chars > max_chars {
        return Err(ValidationError::new(field, format!("must be at most {max_chars} characters")));
    }
    if trimmed.chars().any(|c| c.is_control()) {
        return Err(ValidationError::new(field, "must not contain control characters"));
    }
    Ok(trimmed.to_owned())
}
