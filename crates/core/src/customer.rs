//! The customer record: the account the desk recovers.

use crate::contact::{EmailAddress, PhoneE164};
use crate::env::Timestamp;
use crate::ids::{CustomerId, TenantId};
use crate::validation::{bounded_text, ValidationError};

string_enum!(
    /// Whether the account can sign in, and who may change that.
    CustomerStatus {
        Active = "active",
        /// Too many failed logins; `account_unlock` (or the tenant) clears it.
        Locked = "locked",
        /// Switched off by the tenant; the desk does not recover it.
        Disabled = "disabled",
        /// Frozen by the security tier (lockdown); only re-proofing lifts it.
        Frozen = "frozen",
    }
);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CustomerFlags {
    /// An administrator or other high-value account: stricter policy, approvals always.
    pub privileged: bool,
    pub vip: bool,
}

/// What the customer has enrolled, without any secret: what verification can ask for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FactorSummary {
    pub password: bool,
    pub totp: bool,
    pub recovery_codes_remaining: u32,
    pub passkeys: u32,
}

impl FactorSummary {
    /// Whether a second factor is enrolled, which a password reset must never bypass.
    pub fn has_second_factor(&self) -> bool {
        self.totp || self.passkeys > 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactEmail {
    pub address: EmailAddress,
    pub verified: bool,
    pub added_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactPhone {
    pub number: PhoneE164,
    pub verified: bool,
    pub added_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub id: CustomerId,
    pub tenant_id: TenantId,
    pub external_id: Option<String>,
    pub username: String,
    pub account_number: Option<String>,
    pub full_name: String,
    pub emails: Vec<ContactEmail>,
    pub phones: Vec<ContactPhone>,
    pub status: CustomerStatus,
    pub flags: CustomerFlags,
    pub factors: FactorSummary,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A customer record as it arrives from outside (API, CSV, JSON lines), before validation.
#[derive(Debug, Clone, Default)]
pub struct CustomerDraft {
    pub external_id: Option<String>,
    pub username: String,
    pub account_number: Option<String>,
    pub full_name: String,
    pub emails: Vec<ContactDraft>,
    pub phones: Vec<ContactDraft>,
    pub status: Option<String>,
    pub privileged: bool,
    pub vip: bool,
    pub totp_enrolled: bool,
    pub recovery_codes_remaining: u32,
    pub passkeys: u32,
}

#[derive(Debug, Clone, Default)]
pub struct ContactDraft {
    pub value: String,
    pub verified: bool,
    /// When the contact point was added to the account in the tenant's system; `None` for one
    /// added now. A proof sent to a recently added contact point does not count.
    pub since: Option<Timestamp>,
}

/// A validated customer record about to be stored.
#[derive(Debug, Clone)]
pub struct NewCustomer {
    pub external_id: Option<String>,
    pub username: String,
    pub account_number: Option<String>,
    pub full_name: String,
    /// Address, verified, added at (`None`: now).
    pub emails: Vec<(EmailAddress, bool, Option<Timestamp>)>,
    pub phones: Vec<(PhoneE164, bool, Option<Timestamp>)>,
    pub status: CustomerStatus,
    pub flags: CustomerFlags,
    pub totp_enrolled: bool,
    pub recovery_codes_remaining: u32,
    pub passkeys: u32,
}

/// Contact points a record may hold, each kind.
pub const CONTACTS_MAX: usize = 10;

impl NewCustomer {
    /// Validates a draft. Phone numbers without a country code are read in `default_region`.
    pub fn parse(draft: &CustomerDraft, default_region: &str) -> Result<Self, ValidationError> {
        let external_id = draft.external_id.as_deref().map(|v| identifier("external_id", v, 200)).transpose()?;
        let account_number =
            draft.account_number.as_deref().map(|v| identifier("account_number", v, 64)).transpose()?;
        let username = identifier("username", &draft.username, 64)?;
        let full_name = bounded_text("full_name", &draft.full_name, 1, 200)?;
        if draft.emails.len() > CONTACTS_MAX || draft.phones.len() > CONTACTS_MAX {
            return Err(ValidationError::new(
                if draft.emails.len() > CONTACTS_MAX { "emails" } else { "phones" },
                format!("at most {CONTACTS_MAX} per customer"),
            ));
        }
        let mut emails: Vec<(EmailAddress, bool, Option<Timestamp>)> = Vec::with_capacity(draft.emails.len());
        for (i, e) in draft.emails.iter().enumerate() {
            let field = format!("emails/{i}");
            let address = EmailAddress::parse(&field, &e.value)?;
            if emails.iter().any(|(a, _, _)| a.normalized() == address.normalized()) {
                return Err(ValidationError::new(field, "is listed twice"));
            }
            emails.push((address, e.verified, e.since));
        }
        let mut phones: Vec<(PhoneE164, bool, Option<Timestamp>)> = Vec::with_capacity(draft.phones.len());
        for (i, p) in draft.phones.iter().enumerate() {
            let field = format!("phones/{i}");
            let number = PhoneE164::parse(&field, &p.value, default_region)?;
            if phones.iter().any(|(n, _, _)| *n == number) {
                return Err(ValidationError::new(field, "is listed twice"));
            }
            phones.push((number, p.verified, p.since));
        }
        let status = match draft.status.as_deref() {
            Some(s) => CustomerStatus::parse("status", s)?,
            None => CustomerStatus::Active,
        };
        if draft.recovery_codes_remaining > 100 || draft.passkeys > 100 {
            return Err(ValidationError::new("factors", "counts must be at most 100"));
        }
        Ok(Self {
            external_id,
            username,
            account_number,
            full_name,
            emails,
            phones,
            status,
            flags: CustomerFlags { privileged: draft.privileged, vip: draft.vip },
            totp_enrolled: draft.totp_enrolled,
            recovery_codes_remaining: draft.recovery_codes_remaining,
            passkeys: draft.passkeys,
        })
    }
}

impl NewCustomer {
    /// The record as stored: contact points added `now`; `password` says whether the built-in
    /// directory holds a password for it.
    pub fn into_customer(self, id: CustomerId, tenant_id: TenantId, now: Timestamp, password: bool) -> Customer {
        Customer {
            id,
            tenant_id,
            external_id: self.external_id,
            username: self.username,
            account_number: self.account_number,
            full_name: self.full_name,
            emails: self
                .emails
                .into_iter()
                .map(|(address, verified, since)| ContactEmail { address, verified, added_at: added(since, now) })
                .collect(),
            phones: self
                .phones
                .into_iter()
                .map(|(number, verified, since)| ContactPhone { number, verified, added_at: added(since, now) })
                .collect(),
            status: self.status,
            flags: self.flags,
            factors: FactorSummary {
                password,
                totp: self.totp_enrolled,
                recovery_codes_remaining: self.recovery_codes_remaining,
                passkeys: self.passkeys,
            },
            created_at: now,
            updated_at: now,
        }
    }
}

/// When a contact point counts as added: when the tenant says, never later than now.
fn added(since: Option<Timestamp>, now: Timestamp) -> Timestamp {
    since.map_or(now, |s| s.min(now))
}

/// An identifier-like field: printable, no spaces, bounded.
fn identifier(field: &str, value: &str, max_chars: usize) -> Result<String, ValidationError> {
    let value = bounded_text(field, value, 1, max_chars)?;
    if value.chars().any(char::is_whitespace) {
        return Err(ValidationError::new(field, "must not contain spaces"));
    }
    Ok(value)
}

/// Which identifier a lookup uses (integrations search by these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerLookup {
    ExternalId(String),
    Username(String),
    AccountNumber(String),
    Email(EmailAddress),
    Phone(PhoneE164),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> CustomerDraft {
        CustomerDraft {
            username: "jdoe".into(),
            full_name: "Jane Doe".into(),
            emails: vec![ContactDraft { value: "jane@example.com".into(), verified: true, since: None }],
            phones: vec![ContactDraft { value: "201-555-0123".into(), verified: true, since: None }],
            ..CustomerDraft::default()
        }
    }

    #[test]
    fn a_valid_draft_parses() {
        let c = NewCustomer::parse(&draft(), "US").unwrap();
        assert_eq!(c.phones[0].0.as_str(), "+12015550123");
        assert_eq!(c.status, CustomerStatus::Active);
    }

    #[test]
    fn bad_fields_are_named() {
        type Mutation = fn(&mut CustomerDraft);
        let cases: Vec<(Mutation, &str)> = vec![
            (|d| d.username = " ".into(), "username"),
            (|d| d.username = "j doe".into(), "username"),
            (|d| d.full_name = String::new(), "full_name"),
            (|d| d.emails[0].value = "nope".into(), "emails/0"),
            (|d| d.phones[0].value = "123".into(), "phones/0"),
            (|d| d.status = Some("asleep".into()), "status"),
            (|d| d.emails.push(d.emails[0].clone()), "emails/1"),
        ];
        for (mutate, field) in cases {
            let mut d = draft();
            mutate(&mut d);
            assert_eq!(NewCustomer::parse(&d, "US").unwrap_err().field, field);
        }
    }
}
