//! Rows as both databases return them, and their conversion to domain types. Reading back is
//! strict: anything that does not parse is `StoreError::Corrupt`.

use regain_core::case::{CaseKind, CaseState, Channel};
use regain_core::contact::{EmailAddress, PhoneE164};
use regain_core::customer::{ContactEmail, ContactPhone, Customer, CustomerFlags, CustomerStatus, FactorSummary};
use regain_core::{ApiKeyId, Case, CaseId, CustomerId, Role, Staff, StaffId, Tenant, TenantId, TenantSlug};
use regain_crypto::{DataKey, Keyring};
use regain_store::codec::{actor_from_text, parse_column, settings_from_json, tier, timestamp};
use regain_store::{
    ApiKeyRecord, CustomerSessionRecord, LoginAttempt, SessionRecord, StaffRecord, StoreResult, TimelineEntry,
};

use crate::sealing::{case_key, open_customer, open_event, open_summary};

#[derive(sqlx::FromRow)]
pub struct TenantRow {
    pub id: String,
    pub slug: String,
    pub display_name: String,
    pub settings: String,
    pub created_at: i64,
}

impl TenantRow {
    pub fn into_domain(self) -> StoreResult<Tenant> {
        Ok(Tenant {
            id: parse_column("tenants.id", &self.id, TenantId::parse)?,
            slug: parse_column("tenants.slug", &self.slug, TenantSlug::parse)?,
            display_name: self.display_name,
            settings: settings_from_json(&self.settings)?,
            created_at: timestamp(self.created_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct StaffRow {
    pub id: String,
    pub tenant_id: Option<String>,
    pub email: String,
    pub display_name: String,
    pub role: String,
    pub active: bool,
    pub password_hash: String,
    pub totp_secret: Vec<u8>,
    pub locked_until: Option<i64>,
    pub created_at: i64,
}

impl StaffRow {
    pub fn into_domain(self) -> StoreResult<StaffRecord> {
        Ok(StaffRecord {
            staff: Staff {
                id: parse_column("staff.id", &self.id, StaffId::parse)?,
                tenant_id: self
                    .tenant_id
                    .as_deref()
                    .map(|t| parse_column("staff.tenant_id", t, TenantId::parse))
                    .transpose()?,
                email: parse_column("staff.email", &self.email, EmailAddress::from_stored)?,
                display_name: self.display_name,
                role: parse_column("staff.role", &self.role, Role::parse)?,
                active: self.active,
                created_at: timestamp(self.created_at),
            },
            password_hash: self.password_hash,
            totp_secret: self.totp_secret,
            locked_until: self.locked_until.map(timestamp),
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct SessionRow {
    pub token_hash: String,
    pub staff_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub idle_until: i64,
}

impl SessionRow {
    pub fn into_domain(self) -> StoreResult<SessionRecord> {
        Ok(SessionRecord {
            token_hash: self.token_hash,
            staff_id: parse_column("staff_sessions.staff_id", &self.staff_id, StaffId::parse)?,
            created_at: timestamp(self.created_at),
            expires_at: timestamp(self.expires_at),
            idle_until: timestamp(self.idle_until),
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub role: String,
    pub secret_hash: String,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl ApiKeyRow {
    pub fn into_domain(self) -> StoreResult<ApiKeyRecord> {
        Ok(ApiKeyRecord {
            id: parse_column("api_keys.id", &self.id, ApiKeyId::parse)?,
            tenant_id: parse_column("api_keys.tenant_id", &self.tenant_id, TenantId::parse)?,
            name: self.name,
            role: parse_column("api_keys.role", &self.role, Role::parse)?,
            secret_hash: self.secret_hash,
            created_by: self
                .created_by
                .as_deref()
                .map(|s| parse_column("api_keys.created_by", s, StaffId::parse))
                .transpose()?,
            created_at: timestamp(self.created_at),
            last_used_at: self.last_used_at.map(timestamp),
            revoked_at: self.revoked_at.map(timestamp),
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct CustomerRow {
    pub id: String,
    pub tenant_id: String,
    pub external_id: Option<String>,
    pub sealed: String,
    pub status: String,
    pub privileged: bool,
    pub vip: bool,
    pub password_enrolled: bool,
    pub totp_enrolled: bool,
    pub recovery_codes_remaining: i64,
    pub passkeys: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub wrapped_key: Option<Vec<u8>>,
}

#[derive(sqlx::FromRow)]
pub struct EmailRow {
    pub position: i64,
    pub address_sealed: String,
    pub verified: bool,
    pub added_at: i64,
}

#[derive(sqlx::FromRow)]
pub struct PhoneRow {
    pub position: i64,
    pub number_sealed: String,
    pub verified: bool,
    pub added_at: i64,
}

/// A row of a customer's emails and phones read together (`kind` is `email` or `phone`).
#[derive(sqlx::FromRow)]
pub struct ContactRow {
    pub kind: String,
    pub position: i64,
    pub sealed: String,
    pub verified: bool,
    pub added_at: i64,
}

impl ContactRow {
    /// The emails and the phones, each in the order read.
    pub fn split(rows: Vec<Self>) -> (Vec<EmailRow>, Vec<PhoneRow>) {
        let (mut emails, mut phones) = (Vec::new(), Vec::new());
        for r in rows {
            if r.kind == "email" {
                emails.push(EmailRow {
                    position: r.position,
                    address_sealed: r.sealed,
                    verified: r.verified,
                    added_at: r.added_at,
                });
            } else {
                phones.push(PhoneRow {
                    position: r.position,
                    number_sealed: r.sealed,
                    verified: r.verified,
                    added_at: r.added_at,
                });
            }
        }
        (emails, phones)
    }
}

impl CustomerRow {
    pub fn into_domain(self, keyring: &Keyring, emails: Vec<EmailRow>, phones: Vec<PhoneRow>) -> StoreResult<Customer> {
        let count = |n: i64| u32::try_from(n).unwrap_or(0);
        let position = |n: i64| usize::try_from(n).unwrap_or(usize::MAX);
        let id = parse_column("customers.id", &self.id, CustomerId::parse)?;
        let opened = open_customer(keyring, id, self.wrapped_key.as_deref(), &self.sealed)?;
        Ok(Customer {
            id,
            tenant_id: parse_column("customers.tenant_id", &self.tenant_id, TenantId::parse)?,
            external_id: self.external_id,
            emails: emails
                .into_iter()
                .map(|e| {
                    let address = opened.email(position(e.position), &e.address_sealed)?;
                    Ok(ContactEmail {
                        address: parse_column("customer_emails.address", &address, EmailAddress::from_stored)?,
                        verified: e.verified,
                        added_at: timestamp(e.added_at),
                    })
                })
                .collect::<StoreResult<_>>()?,
            phones: phones
                .into_iter()
                .map(|p| {
                    let number = opened.phone(position(p.position), &p.number_sealed)?;
                    Ok(ContactPhone {
                        number: parse_column("customer_phones.number", &number, PhoneE164::from_e164)?,
                        verified: p.verified,
                        added_at: timestamp(p.added_at),
                    })
                })
                .collect::<StoreResult<_>>()?,
            username: opened.username,
            account_number: opened.account_number,
            full_name: opened.full_name,
            status: parse_column("customers.status", &self.status, CustomerStatus::parse)?,
            flags: CustomerFlags { privileged: self.privileged, vip: self.vip },
            factors: FactorSummary {
                password: self.password_enrolled,
                totp: self.totp_enrolled,
                recovery_codes_remaining: count(self.recovery_codes_remaining),
                passkeys: count(self.passkeys),
            },
            created_at: timestamp(self.created_at),
            updated_at: timestamp(self.updated_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct LoginRow {
    pub tenant_id: String,
    pub customer_id: String,
    pub at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub success: bool,
}

impl LoginRow {
    pub fn into_domain(self) -> StoreResult<LoginAttempt> {
        Ok(LoginAttempt {
            tenant_id: parse_column("customer_logins.tenant_id", &self.tenant_id, TenantId::parse)?,
            customer_id: parse_column("customer_logins.customer_id", &self.customer_id, CustomerId::parse)?,
            at: timestamp(self.at),
            ip: self.ip,
            user_agent: self.user_agent,
            success: self.success,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct CustomerSessionRow {
    pub token_hash: String,
    pub tenant_id: String,
    pub customer_id: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl CustomerSessionRow {
    pub fn into_domain(self) -> StoreResult<CustomerSessionRecord> {
        Ok(CustomerSessionRecord {
            token_hash: self.token_hash,
            tenant_id: parse_column("customer_sessions.tenant_id", &self.tenant_id, TenantId::parse)?,
            customer_id: parse_column("customer_sessions.customer_id", &self.customer_id, CustomerId::parse)?,
            created_at: timestamp(self.created_at),
            expires_at: timestamp(self.expires_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct CaseRow {
    pub id: String,
    pub tenant_id: String,
    pub kind: String,
    pub channel: String,
    pub state: String,
    pub tier: i64,
    pub assignee: Option<String>,
    pub customer_id: Option<String>,
    pub summary: Option<String>,
    pub approval_required: bool,
    pub approval_requested_by: Option<String>,
    pub decided_by: Option<String>,
    pub cooling_off_until: Option<i64>,
    pub first_response_due: i64,
    pub resolution_due: i64,
    pub first_response_at: Option<i64>,
    pub expires_at: i64,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
    pub risk_score: Option<i64>,
    pub risk_band: Option<String>,
    pub risk_reasons: Option<String>,
    pub observed: String,
    pub wrapped_key: Option<Vec<u8>>,
}

impl CaseRow {
    pub fn into_domain(self, keyring: &Keyring) -> StoreResult<Case> {
        let id = parse_column("cases.id", &self.id, CaseId::parse)?;
        let key = case_key(keyring, id, self.wrapped_key.as_deref())?;
        Ok(Case {
            summary: open_summary(key.as_ref(), id, self.summary.as_deref())?,
            id,
            tenant_id: parse_column("cases.tenant_id", &self.tenant_id, TenantId::parse)?,
            kind: parse_column("cases.kind", &self.kind, CaseKind::parse)?,
            channel: parse_column("cases.channel", &self.channel, Channel::parse)?,
            state: parse_column("cases.state", &self.state, CaseState::parse)?,
            tier: tier(self.tier)?,
            assignee: self
                .assignee
                .as_deref()
                .map(|a| parse_column("cases.assignee", a, StaffId::parse))
                .transpose()?,
            customer_id: self
                .customer_id
                .as_deref()
                .map(|c| parse_column("cases.customer_id", c, CustomerId::parse))
                .transpose()?,
            approval_required: self.approval_required,
            approval_requested_by: self.approval_requested_by.as_deref().map(actor_from_text).transpose()?,
            decided_by: self.decided_by.as_deref().map(actor_from_text).transpose()?,
            cooling_off_until: self.cooling_off_until.map(timestamp),
            risk: regain_store::codec::risk_from_columns(
                self.risk_score,
                self.risk_band.as_deref(),
                self.risk_reasons.as_deref(),
            )?,
            observed: regain_store::codec::observed_from_text(&self.observed)?,
            first_response_due: timestamp(self.first_response_due),
            resolution_due: timestamp(self.resolution_due),
            first_response_at: self.first_response_at.map(timestamp),
            expires_at: timestamp(self.expires_at),
            created_by: actor_from_text(&self.created_by)?,
            created_at: timestamp(self.created_at),
            updated_at: timestamp(self.updated_at),
            version: self.version,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct EventRow {
    pub case_id: String,
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub event_type: String,
    pub data: String,
    pub state_after: String,
}

impl EventRow {
    /// `key` is the case's data key, `None` once destroyed.
    pub fn into_domain(self, key: Option<&DataKey>) -> StoreResult<TimelineEntry> {
        let case_id = parse_column("case_events.case_id", &self.case_id, CaseId::parse)?;
        let (event, erased) = open_event(key, case_id, self.seq, &self.event_type, &self.data)?;
        Ok(TimelineEntry {
            case_id,
            seq: self.seq,
            at: timestamp(self.at),
            actor: actor_from_text(&self.actor)?,
            event,
            state_after: parse_column("case_events.state_after", &self.state_after, CaseState::parse)?,
            erased,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct AuditEntryRow {
    pub seq: Option<i64>,
    pub tenant_id: Option<String>,
    pub at: i64,
    pub action: String,
    pub case_id: Option<String>,
    pub customer_id: Option<String>,
    pub entry: String,
}

impl AuditEntryRow {
    pub fn into_domain(self) -> StoreResult<regain_store::AuditEntry> {
        Ok(regain_store::AuditEntry {
            seq: self.seq.map(|s| u64::try_from(s).unwrap_or(0)),
            tenant_id: self
                .tenant_id
                .as_deref()
                .map(|t| parse_column("audit_entries.tenant_id", t, TenantId::parse))
                .transpose()?,
            at: timestamp(self.at),
            action: self.action,
            case_id: self
                .case_id
                .as_deref()
                .map(|c| parse_column("audit_entries.case_id", c, CaseId::parse))
                .transpose()?,
            customer_id: self
                .customer_id
                .as_deref()
                .map(|c| parse_column("audit_entries.customer_id", c, CustomerId::parse))
                .transpose()?,
            entry: self.entry,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct CheckpointRow {
    pub size: i64,
    pub root: Vec<u8>,
    pub note: String,
    pub at: i64,
}

impl CheckpointRow {
    pub fn into_domain(self) -> StoreResult<regain_store::StoredCheckpoint> {
        Ok(regain_store::StoredCheckpoint {
            size: u64::try_from(self.size)
                .map_err(|_| regain_store::StoreError::Corrupt("audit_checkpoints.size".into()))?,
            root: hash32("audit_checkpoints.root", &self.root)?,
            note: self.note,
            at: timestamp(self.at),
        })
    }
}

/// A stored 32-byte hash.
pub fn hash32(what: &str, bytes: &[u8]) -> StoreResult<[u8; 32]> {
    bytes.try_into().map_err(|_| regain_store::StoreError::Corrupt(format!("{what} is not a 32-byte hash")))
}
