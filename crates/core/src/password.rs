//! Rules for a new password (SECURITY.md P5; NIST SP 800-63B-4 3.1.1.2): a length counted in
//! code points, at least 8 (12 by default) and at most 64 or more (128 by default), never
//! truncated; not one of 30,000 common and breached passwords; not built on the account's own
//! words; and strong enough by zxcvbn's estimate, with its feedback for the person choosing.
//! No composition rules (no "one digit, one symbol"), no forced rotation.

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use crate::validation::ValidationError;

/// The shipped blocklist: one password a line, most common first.
const COMMON_PASSWORDS: &str = include_str!("../data/common-passwords.txt");

static BLOCKLIST: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    COMMON_PASSWORDS.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect()
});

/// How many passwords the shipped blocklist holds.
pub fn blocklist_len() -> usize {
    BLOCKLIST.len()
}

/// A tenant's length rules, within the floors no tenant can lower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordRules {
    pub min_chars: u32,
    pub max_chars: u32,
}

impl Default for PasswordRules {
    fn default() -> Self {
        Self { min_chars: 12, max_chars: 128 }
    }
}

impl PasswordRules {
    pub const MIN_CHARS_FLOOR: u32 = 8;
    /// The longest limit a tenant may set must still allow at least this many.
    pub const MAX_CHARS_FLOOR: u32 = 64;
    pub const MAX_CHARS_CEILING: u32 = 1024;
    /// zxcvbn's score (0–4) a new password needs: 3 is "safely unguessable" (10^10 guesses).
    pub const SCORE_MIN: u8 = 3;

    pub fn new(min_chars: u32, max_chars: u32) -> Result<Self, ValidationError> {
        if min_chars < Self::MIN_CHARS_FLOOR {
            return Err(ValidationError::new("min_chars", format!("must be at least {}", Self::MIN_CHARS_FLOOR)));
        }
        if !(Self::MAX_CHARS_FLOOR..=Self::MAX_CHARS_CEILING).contains(&max_chars) {
            return Err(ValidationError::new(
                "max_chars",
                format!("must be between {} and {}", Self::MAX_CHARS_FLOOR, Self::MAX_CHARS_CEILING),
            ));
        }
        if min_chars > max_chars {
            return Err(ValidationError::new("min_chars", "must not be more than max_chars"));
        }
        Ok(Self { min_chars, max_chars })
    }
}

/// Why a new password is refused, in words for the person choosing it. Never echoes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    TooShort {
        min_chars: u32,
    },
    TooLong {
        max_chars: u32,
    },
    Common,
    /// It contains the account's own name, username or email (`what` names which).
    AccountWord {
        what: String,
    },
    /// Guessable: zxcvbn's warning and suggestions.
    Weak {
        warning: Option<String>,
        suggestions: Vec<String>,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { min_chars } => write!(f, "use at least {min_chars} characters"),
            Self::TooLong { max_chars } => write!(f, "use at most {max_chars} characters"),
            Self::Common => f.write_str("this password is among the most common or breached ones; choose another"),
            Self::AccountWord { what } => write!(f, "do not build the password on your {what}"),
            Self::Weak { warning, suggestions } => {
                f.write_str("this password would be easy to guess")?;
                if let Some(warning) = warning {
                    write!(f, ": {warning}")?;
                }
                for suggestion in suggestions {
                    write!(f, " {suggestion}")?;
                }
                Ok(())
            }
        }
    }
}

/// What a password that passes gets: zxcvbn's score (3 or 4) and any suggestions, for a meter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Strength {
    pub score: u8,
    pub suggestions: Vec<String>,
}

/// Checks a new password. `account_words` are the account's own words (name, username, email):
/// each is judged on its parts of four characters or more.
pub fn check(rules: &PasswordRules, password: &str, account_words: &[(&str, &str)]) -> Result<Strength, Refusal> {
    let chars = password.chars().count();
    if chars < rules.min_chars as usize {
        return Err(Refusal::TooShort { min_chars: rules.min_chars });
    }
    if chars > rules.max_chars as usize {
        return Err(Refusal::TooLong { max_chars: rules.max_chars });
    }
    let lower = password.to_lowercase();
    if BLOCKLIST.contains(lower.as_str()) || BLOCKLIST.contains(lower.trim_end_matches(|c: char| !c.is_alphabetic())) {
        return Err(Refusal::Common);
    }
    let mut inputs: Vec<String> = Vec::new();
    for (what, value) in account_words {
        for part in value.to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|p| p.chars().count() >= 4) {
            if lower.contains(part) {
                return Err(Refusal::AccountWord { what: (*what).to_owned() });
            }
            inputs.push(part.to_owned());
        }
    }
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let estimate = zxcvbn::zxcvbn(password, &inputs);
    let score = u8::from(estimate.score());
    let feedback = estimate.feedback();
    let suggestions: Vec<String> =
        feedback.map(|f| f.suggestions().iter().map(ToString::to_string).collect()).unwrap_or_default();
    if score < PasswordRules::SCORE_MIN {
        let warning = feedback.and_then(|f| f.warning()).map(|w| w.to_string());
        return Err(Refusal::Weak { warning, suggestions });
    }
    Ok(Strength { score, suggestions })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(password: &str) -> Result<u8, Refusal> {
        check(&PasswordRules::default(), password, &[("username", "jane.doe"), ("email", "jane@example.com")])
            .map(|s| s.score)
    }

    #[test]
    fn the_blocklist_ships_at_least_ten_thousand_passwords() {
        assert!(blocklist_len() >= 10_000, "{}", blocklist_len());
        assert!(BLOCKLIST.contains("password") && BLOCKLIST.contains("123456") && BLOCKLIST.contains("trustno1"));
    }

    #[test]
    fn p5_table() {
        // SECURITY.md P5: length by code point, blocklist, no composition rules, no truncation.
        let long_strong = "umbrella gravel tuesday ninety kettle ".repeat(3);
        for (password, expected) in [
            ("short", Err(Refusal::TooShort { min_chars: 12 })),
            ("elevenchars", Err(Refusal::TooShort { min_chars: 12 })),
            ("password", Err(Refusal::TooShort { min_chars: 12 })),
            ("password1234", Err(Refusal::Common)),
            ("Qwertyuiop!!", Err(Refusal::Common)),
            ("trustno1trustno1", Err(Refusal::Weak { warning: None, suggestions: Vec::new() })),
            ("jane.doe-rocks-2026", Err(Refusal::AccountWord { what: "username".into() })),
            ("all lower case words only here", Ok(4)),
            ("umbrella-gravel-Tuesday-91", Ok(4)),
        ] {
            match (verdict(password), expected) {
                (Err(Refusal::Weak { .. }), Err(Refusal::Weak { .. })) => {}
                (got, want) => assert_eq!(got.map(|s| s >= 3), want.map(|s| s >= 3), "{password:?}"),
            }
        }
        // Counted by code point: twelve emoji are twelve characters, none of them ASCII.
        let emoji = "🔑🌵🚲🎻🦉🍋🧭🪁🛶🧩🌋🦔";
        assert_eq!(emoji.chars().count(), 12);
        assert!(!matches!(verdict(emoji), Err(Refusal::TooShort { .. })));
        // Long ones are fine up to the limit, refused past it, never cut.
        assert!(long_strong.chars().count() > 64 && long_strong.chars().count() <= 128);
        assert!(verdict(&long_strong).is_ok());
        assert_eq!(verdict(&"x".repeat(129)), Err(Refusal::TooLong { max_chars: 128 }));
    }

    #[test]
    fn weak_passwords_say_why() {
        let Err(refusal) = verdict("aaaaaaaaaaaaaaaa") else { panic!("a repeated letter passed") };
        let text = refusal.to_string();
        assert!(text.starts_with("this password would be easy to guess"), "{text}");
        assert!(!text.contains("aaaa"), "the password is never echoed: {text}");
    }

    #[test]
    fn the_floors_hold() {
        assert!(PasswordRules::new(8, 64).is_ok());
        assert_eq!(PasswordRules::new(7, 64).unwrap_err().field, "min_chars");
        assert_eq!(PasswordRules::new(12, 63).unwrap_err().field, "max_chars");
        assert_eq!(PasswordRules::new(70, 64).unwrap_err().field, "min_chars");
    }
}
