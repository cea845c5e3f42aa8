//! A tenant: one client company the desk serves.

use std::fmt;

use crate::contact::is_known_region;
use crate::env::Timestamp;
use crate::ids::TenantId;
use crate::validation::{bounded_text, ValidationError};

/// A tenant's short name, used in URLs and configuration: 2–63 characters of `a-z`, `0-9` and
/// `-`, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantSlug(String);

impl TenantSlug {
    pub fn parse(field: &str, input: &str) -> Result<Self, ValidationError> {
        let ok_chars = input.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        let starts_with_letter = input.chars().next().is_some_and(|c| c.is_ascii_lowercase());
        if !(2..=63).contains(&input.len()) || !ok_chars || !starts_with_letter || input.ends_with('-') {
            return Err(ValidationError::new(
                field,
                "must be 2-63 characters of a-z, 0-9 and '-', starting with a letter",
            ));
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The knobs a tenant admin turns. Every limit has its unit in its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSettings {
    /// ISO 3166-1 alpha-2 region used to read phone numbers written without a country code.
    pub default_region: String,
    /// SLA: time until an agent must first act on a new case.
    pub sla_first_response_minutes: u32,
    /// SLA: time until a case must be resolved.
    pub sla_resolution_minutes: u32,
    /// An unfinished case that has not reached execution expires after this long.
    pub case_expiry_hours: u32,
    /// Consecutive failed logins to the built-in directory before the account locks.
    pub login_failures_max: u32,
    /// Retention: a closed case (resolved, rejected, cancelled, expired) is purged, with its
    /// timeline and its key, this long after it last changed. The audit log keeps its entries,
    /// whose free text can then no longer be read.
    pub closed_case_retention_days: u32,
}

impl TenantSettings {
    pub const LOGIN_FAILURES_MAX_LIMIT: u32 = 100;
    /// Ten years: longer than any record-keeping rule a desk is under.
    pub const RETENTION_DAYS_LIMIT: u32 = 3653;

    pub fn validate(self) -> Result<Self, ValidationError> {
        if !is_known_region(&self.default_region) {
            return Err(ValidationError::new(
                "default_region",
                "must be an ISO 3166-1 alpha-2 region code such as US or GB",
            ));
        }
        let range = |field: &str, value: u32, min: u32, max: u32| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(ValidationError::new(field, format!("must be between {min} and {max}")))
            }
        };
        range("sla_first_response_minutes", self.sla_first_response_minutes, 1, 60 * 24 * 30)?;
        range("sla_resolution_minutes", self.sla_resolution_minutes, 1, 60 * 24 * 90)?;
        range("case_expiry_hours", self.case_expiry_hours, 1, 24 * 90)?;
        range("login_failures_max", self.login_failures_max, 1, Self::LOGIN_FAILURES_MAX_LIMIT)?;
        range("closed_case_retention_days", self.closed_case_retention_days, 1, Self::RETENTION_DAYS_LIMIT)?;
        if self.sla_first_response_minutes > self.sla_resolution_minutes {
            return Err(ValidationError::new(
                "sla_first_response_minutes",
                "must not be later than sla_resolution_minutes",
            ));
        }
        Ok(self)
    }
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            default_region: "US".to_owned(),
            sla_first_response_minutes: 15,
            sla_resolution_minutes: 8 * 60,
            case_expiry_hours: 72,
            login_failures_max: 10,
            closed_case_retention_days: 365,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: TenantSlug,
    pub display_name: String,
    pub settings: TenantSettings,
    pub created_at: Timestamp,
}

/// A tenant about to be created, already validated.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub slug: TenantSlug,
    pub display_name: String,
    pub settings: TenantSettings,
}

impl NewTenant {
    pub fn parse(slug: &str, display_name: &str, settings: TenantSettings) -> Result<Self, ValidationError> {
        Ok(Self {
            slug: TenantSlug::parse("slug", slug)?,
            display_name: bounded_text("display_name", display_name, 1, 200)?,
            settings: settings.validate()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert!(TenantSlug::parse("slug", "acme-bank").is_ok());
        for bad in ["a", "Acme", "1acme", "acme-", "ac me", "acmé", ""] {
            assert!(TenantSlug::parse("slug", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn settings_are_bounded() {
        assert!(TenantSettings::default().validate().is_ok());
        let bad = TenantSettings { login_failures_max: 101, ..TenantSettings::default() };
        assert_eq!(bad.validate().unwrap_err().field, "login_failures_max");
        let bad = TenantSettings { default_region: "XX".into(), ..TenantSettings::default() };
        assert_eq!(bad.validate().unwrap_err().field, "default_region");
    }
}
