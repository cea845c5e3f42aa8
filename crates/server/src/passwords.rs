//! The rules a new password must meet (SECURITY.md P5): a length counted in code points, with no
//! composition rules and no truncation. The breached-password blocklist and strength feedback
//! come with the customer reset page.

use regain_core::ValidationError;

/// Longest password accepted, in code points; longer input is refused, never truncated.
pub const PASSWORD_CHARS_MAX: usize = 128;

pub fn check_new_password(field: &str, password: &str, min_chars: usize) -> Result<(), ValidationError> {
    let chars = password.chars().count();
    if chars < min_chars {
        return Err(ValidationError::new(field, format!("must be at least {min_chars} characters")));
    }
    if chars > PASSWORD_CHARS_MAX {
        return Err(ValidationError::new(field, format!("must be at most {PASSWORD_CHARS_MAX} characters")));
    }
    if password.chars().all(|c| c == password.chars().next().unwrap_or(' ')) {
        return Err(ValidationError::new(field, "must not be one character repeated"));
    }
    Ok(())
}
