//! Executing recoveries' SQL (issue 6): the action queue, reset links, and the effects a case
//! change applies in its own transaction.

use regain_core::action::ActionKind;
use regain_core::{CaseId, CustomerId, TenantId};
use regain_crypto::Keyring;
use regain_store::codec::{parse_column, timestamp};
use regain_store::{
    ActionEntry, ClaimedAction, ContactChange, ContactKind, CustomerLink, LinkPurpose, StoreError, StoreResult,
    WebhookDelivery,
};

pub const CONTACT_CHANGE_COLUMNS: &str = "id, case_id, customer_id, kind, masked, replace_old, state, attempts, \
     code_expires_at, created_at, confirmed_at, applied_at, replaced_masked, reported_at";

#[derive(sqlx::FromRow)]
pub struct ContactChangeRow {
    pub id: String,
    pub case_id: String,
    pub customer_id: String,
    pub kind: String,
    pub masked: String,
    pub replace_old: bool,
    pub state: String,
    pub attempts: i64,
    pub code_expires_at: i64,
    pub created_at: i64,
    pub confirmed_at: Option<i64>,
    pub applied_at: Option<i64>,
    pub replaced_masked: Option<String>,
    pub reported_at: Option<i64>,
}

impl ContactChangeRow {
    pub fn into_domain(self) -> StoreResult<ContactChange> {
        let replaced = match self.replaced_masked.as_deref() {
            None => Vec::new(),
            Some(text) => serde_json::from_str(text)
                .map_err(|_| StoreError::Corrupt("contact_changes.replaced_masked does not parse".into()))?,
        };
        Ok(ContactChange {
            case_id: parse_column("contact_changes.case_id", &self.case_id, CaseId::parse)?,
            customer_id: parse_column("contact_changes.customer_id", &self.customer_id, CustomerId::parse)?,
            kind: contact_kind(&self.kind)?,
            masked: self.masked,
            replace: self.replace_old,
            state: self.state,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            code_expires_at: timestamp(self.code_expires_at),
            created_at: timestamp(self.created_at),
            confirmed_at: self.confirmed_at.map(timestamp),
            applied_at: self.applied_at.map(timestamp),
            replaced,
            reported_at: self.reported_at.map(timestamp),
            id: self.id,
        })
    }
}

pub fn contact_kind(text: &str) -> StoreResult<ContactKind> {
    ContactKind::parse(text).ok_or_else(|| StoreError::Corrupt(format!("contact_changes.kind: unknown kind {text:?}")))
}

/// The table, sealed column and index column of a kind's contact points.
pub fn contact_table(kind: ContactKind) -> (&'static str, &'static str, &'static str) {
    match kind {
        ContactKind::Email => ("customer_emails", "address_sealed", "address_bidx"),
        ContactKind::Phone => ("customer_phones", "number_sealed", "number_bidx"),
    }
}

/// The masked form of a stored contact value (normalized, so it parses).
pub fn masked_contact(kind: ContactKind, value: &str) -> String {
    match kind {
        ContactKind::Email => regain_core::EmailAddress::parse("email", value).map(|e| e.masked()).unwrap_or_default(),
        ContactKind::Phone => {
            regain_core::PhoneE164::parse("phone", value, "US").map(|p| p.masked()).unwrap_or_default()
        }
    }
}

/// A contact a change replaced, kept (sealed) so a rollback can put it back as it was.
pub struct ReplacedContact {
    pub value: String,
    pub verified: bool,
    pub added_at: i64,
}

impl ReplacedContact {
    pub fn list_to_json(list: &[Self]) -> String {
        serde_json::Value::Array(
            list.iter()
                .map(|c| serde_json::json!({"value": c.value, "verified": c.verified, "added_at": c.added_at}))
                .collect(),
        )
        .to_string()
    }

    pub fn list_from_json(text: &str) -> StoreResult<Vec<Self>> {
        let corrupt = || StoreError::Corrupt("contact_changes.replaced_sealed does not parse".into());
        let value: serde_json::Value = serde_json::from_str(text).map_err(|_| corrupt())?;
        value
            .as_array()
            .ok_or_else(corrupt)?
            .iter()
            .map(|item| {
                Ok(Self {
                    value: item.get("value").and_then(serde_json::Value::as_str).ok_or_else(corrupt)?.to_owned(),
                    verified: item.get("verified").and_then(serde_json::Value::as_bool).ok_or_else(corrupt)?,
                    added_at: item.get("added_at").and_then(serde_json::Value::as_i64).ok_or_else(corrupt)?,
                })
            })
            .collect()
    }
}

pub fn link_token_hash(keyring: &Keyring, token: &str) -> String {
    keyring.index().blind("", "customer_link", token)
}

/// `count` copies of the VALUES tuple `row`, whose parameters are `$1`…`$width`, numbered on
/// for each copy (`$1` of the second copy is `$width+1`), for one multi-row INSERT.
pub fn numbered_rows(count: usize, width: usize, row: &str) -> String {
    let mut sql = String::with_capacity(count * (row.len() + 8));
    for k in 0..count {
        if k > 0 {
            sql.push_str(", ");
        }
        let mut chars = row.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c != '$' {
                sql.push(c);
                continue;
            }
            let start = i + 1;
            let mut end = start;
            while let Some(&(j, d)) = chars.peek() {
                if !d.is_ascii_digit() {
                    break;
                }
                end = j + d.len_utf8();
                chars.next();
            }
            match row[start..end].parse::<usize>() {
                Ok(n) => sql.push_str(&format!("${}", k * width + n)),
                Err(_) => sql.push('$'),
            }
        }
    }
    sql
}

pub const ACTION_COLUMNS: &str = "id, tenant_id, case_id, customer_id, action, connector, attempts";

/// Claims due actions when one writer runs at a time (SQLite).
pub const ACTION_CLAIM_ONE_WRITER: &str = "UPDATE recovery_actions SET next_attempt_at = $2 WHERE id IN \
     (SELECT id FROM recovery_actions WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $3) \
     AND state = 'pending' AND next_attempt_at <= $1 \
     RETURNING id, tenant_id, case_id, customer_id, action, connector, attempts";

/// Claims due actions among concurrent claimers (PostgreSQL): rows another claimer holds are
/// skipped, never waited on.
pub const ACTION_CLAIM_SKIP_LOCKED: &str = "UPDATE recovery_actions SET next_attempt_at = $2 WHERE id IN \
     (SELECT id FROM recovery_actions WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $3 \
      FOR UPDATE SKIP LOCKED) \
     AND state = 'pending' AND next_attempt_at <= $1 \
     RETURNING id, tenant_id, case_id, customer_id, action, connector, attempts";

#[derive(sqlx::FromRow)]
pub struct ClaimRow {
    pub id: String,
    pub tenant_id: String,
    pub case_id: String,
    pub customer_id: String,
    pub action: String,
    pub connector: String,
    pub attempts: i64,
}

impl ClaimRow {
    pub fn into_domain(self) -> StoreResult<ClaimedAction> {
        Ok(ClaimedAction {
            tenant_id: parse_column("recovery_actions.tenant_id", &self.tenant_id, TenantId::parse)?,
            case_id: parse_column("recovery_actions.case_id", &self.case_id, CaseId::parse)?,
            customer_id: parse_column("recovery_actions.customer_id", &self.customer_id, CustomerId::parse)?,
            action: parse_column("recovery_actions.action", &self.action, ActionKind::parse)?,
            connector: self.connector,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            id: self.id,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct ActionRow {
    pub id: String,
    pub action: String,
    pub connector: String,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub next_attempt_at: i64,
    pub created_at: i64,
    pub done_at: Option<i64>,
}

impl ActionRow {
    pub fn into_domain(self) -> StoreResult<ActionEntry> {
        let pending = self.state == "pending";
        Ok(ActionEntry {
            action: parse_column("recovery_actions.action", &self.action, ActionKind::parse)?,
            connector: self.connector,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            last_error: self.last_error,
            next_attempt_at: pending.then(|| timestamp(self.next_attempt_at)),
            created_at: timestamp(self.created_at),
            done_at: self.done_at.map(timestamp),
            state: self.state,
            id: self.id,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct LinkRow {
    pub id: String,
    pub purpose: String,
    pub tenant_id: String,
    pub case_id: Option<String>,
    pub customer_id: String,
    pub destination: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

impl LinkRow {
    pub fn into_domain(self) -> StoreResult<CustomerLink> {
        Ok(CustomerLink {
            purpose: LinkPurpose::parse(&self.purpose)
                .ok_or_else(|| StoreError::Corrupt("customer_links.purpose does not parse".into()))?,
            tenant_id: parse_column("customer_links.tenant_id", &self.tenant_id, TenantId::parse)?,
            case_id: self.case_id.map(|id| parse_column("customer_links.case_id", &id, CaseId::parse)).transpose()?,
            customer_id: parse_column("customer_links.customer_id", &self.customer_id, CustomerId::parse)?,
            destination: self.destination,
            expires_at: timestamp(self.expires_at),
            used_at: self.used_at.map(timestamp),
            id: self.id,
        })
    }
}

pub const WEBHOOK_COLUMNS: &str = "id, tenant_id, case_id, event_type, payload, state, attempts, next_attempt_at, \
     last_status, last_error, created_at, delivered_at";

pub const WEBHOOK_CLAIM_ONE_WRITER: &str = "UPDATE webhook_deliveries SET next_attempt_at = $2 WHERE id IN \
     (SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $3) \
     AND state = 'pending' AND next_attempt_at <= $1 \
     RETURNING id, tenant_id, case_id, event_type, payload, state, attempts, next_attempt_at, last_status, last_error, created_at, delivered_at";

pub const WEBHOOK_CLAIM_SKIP_LOCKED: &str = "UPDATE webhook_deliveries SET next_attempt_at = $2 WHERE id IN \
     (SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $3 \
      FOR UPDATE SKIP LOCKED) \
     AND state = 'pending' AND next_attempt_at <= $1 \
     RETURNING id, tenant_id, case_id, event_type, payload, state, attempts, next_attempt_at, last_status, last_error, created_at, delivered_at";

#[derive(sqlx::FromRow)]
pub struct WebhookRow {
    pub id: String,
    pub tenant_id: String,
    pub case_id: Option<String>,
    pub event_type: String,
    pub payload: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

impl WebhookRow {
    pub fn into_domain(self) -> StoreResult<WebhookDelivery> {
        let pending = self.state == "pending";
        Ok(WebhookDelivery {
            tenant_id: parse_column("webhook_deliveries.tenant_id", &self.tenant_id, TenantId::parse)?,
            case_id: self
                .case_id
                .as_deref()
                .map(|c| parse_column("webhook_deliveries.case_id", c, CaseId::parse))
                .transpose()?,
            event_type: self.event_type,
            payload: self.payload,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            next_attempt_at: pending.then(|| timestamp(self.next_attempt_at)),
            last_status: self.last_status.and_then(|s| u16::try_from(s).ok()),
            last_error: self.last_error,
            created_at: timestamp(self.created_at),
            delivered_at: self.delivered_at.map(timestamp),
            state: self.state,
            id: self.id,
        })
    }
}

/// The inherent methods behind the `Store`'s recovery operations, for `$store` over `$db`.
/// Expanded inside [`crate::impl_sql_store!`], which brings the names it uses into scope.
#[macro_export]
#[doc(hidden)]
macro_rules! impl_sql_recovery {
    ($store:ty, $at_write:literal) => {
        impl $store {
            /// Applies a change's effects in order, inside its transaction; `at` is the change's
            /// time. A run of messages, or of links other than reset links, is written in one
            /// statement each (a notice goes to every address at once).
            async fn apply_effects_in(tx: &mut Tx, keyring: &Keyring, at: Timestamp, effects: &[Effect]) -> StoreResult<()> {
                let batched_link = |e: &Effect| matches!(e, Effect::IssueLink { link, .. } if link.purpose != LinkPurpose::Reset);
                let mut rest = effects;
                while let Some(first) = rest.first() {
                    let run = match first {
                        Effect::Message(_) => rest.iter().take_while(|e| matches!(e, Effect::Message(_))).count(),
                        e if batched_link(e) => rest.iter().take_while(|e| batched_link(e)).count(),
                        _ => 1,
                    };
                    let (now, later) = rest.split_at(run);
                    if run == 1 {
                        Self::apply_effect(tx, keyring, at, first).await?;
                    } else if matches!(first, Effect::Message(_)) {
                        let messages: Vec<&NewMessage> =
                            now.iter().filter_map(|e| if let Effect::Message(m) = e { Some(m) } else { None }).collect();
                        Self::insert_messages(tx, keyring, &messages).await?;
                    } else {
                        let links: Vec<(&NewCustomerLink, &str)> = now
                            .iter()
                            .filter_map(|e| if let Effect::IssueLink { link, token } = e { Some((link, token.as_str())) } else { None })
                            .collect();
                        Self::insert_links(tx, keyring, &links).await?;
                    }
                    rest = later;
                }
                Ok(())
            }

            /// Issues `links` in one statement (none of them a reset link, which ends the ones
            /// sent before it first).
            async fn insert_links(tx: &mut Tx, keyring: &Keyring, links: &[(&NewCustomerLink, &str)]) -> StoreResult<()> {
                if links.is_empty() {
                    return Ok(());
                }
                for chunk in links.chunks($crate::ROWS_PER_INSERT) {
                    let sql = format!(
                        "INSERT INTO customer_links (id, purpose, tenant_id, case_id, customer_id, token_hash, destination, expires_at, created_at) \
                         VALUES {}",
                        $crate::recovery::numbered_rows(chunk.len(), 9, "($1, $2, $3, $4, $5, $6, $7, $8, $9)")
                    );
                    let mut query = sqlx::query(&sql);
                    for (link, token) in chunk {
                        query = query
                            .bind(&link.id)
                            .bind(link.purpose.as_str())
                            .bind(link.tenant_id.to_string())
                            .bind(link.case_id.map(|c| c.to_string()))
                            .bind(link.customer_id.to_string())
                            .bind($crate::recovery::link_token_hash(keyring, token))
                            .bind(&link.destination)
                            .bind(micros(link.expires_at))
                            .bind(micros(link.created_at));
                    }
                    query.execute(&mut **tx).await.map_err(Self::map_err)?;
                }
                Ok(())
            }

            /// Applies one effect of a case change inside its transaction; `at` is the change's time.
            async fn apply_effect(tx: &mut Tx, keyring: &Keyring, at: Timestamp, effect: &Effect) -> StoreResult<()> {
                let one_row = |done: u64| if done == 1 { Ok(()) } else { Err(StoreError::Conflict) };
                match effect {
                    Effect::Message(m) => Self::insert_message(tx, keyring, m).await,
                    Effect::QueueAction(a) => {
                        sqlx::query(
                            "INSERT INTO recovery_actions (id, tenant_id, case_id, customer_id, action, connector, state, \
                             attempts, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7)",
                        )
                        .bind(&a.id)
                        .bind(a.tenant_id.to_string())
                        .bind(a.case_id.to_string())
                        .bind(a.customer_id.to_string())
                        .bind(a.action.as_str())
                        .bind(&a.connector)
                        .bind(micros(a.created_at))
                        .execute(&mut **tx)
                        .await
                        .map_err(Self::map_err)?;
                        Ok(())
                    }
                    Effect::FinishAction { id } => {
                        let done = sqlx::query(
                            "UPDATE recovery_actions SET state = 'done', attempts = attempts + 1, done_at = $2, last_error = NULL \
                             WHERE id = $1 AND state = 'pending'",
                        )
                        .bind(id)
                        .bind(micros(at))
                        .execute(&mut **tx)
                        .await
                        .map_err(Self::map_err)?;
                        one_row(done.rows_affected())
                    }
                    Effect::FailAction { id, error } => {
                        let done = sqlx::query(
                            "UPDATE recovery_actions SET state = 'failed', attempts = attempts + 1, done_at = $2, last_error = $3 \
                             WHERE id = $1 AND state = 'pending'",
                        )
                        .bind(id)
                        .bind(micros(at))
                        .bind(error)
                        .execute(&mut **tx)
                        .await
                        .map_err(Self::map_err)?;
                        one_row(done.rows_affected())
                    }
                    Effect::IssueLink { link, token } => {
                        if link.case_id.is_none() && link.purpose != LinkPurpose::Report {
                            return Err(StoreError::Precondition(format!("a {} link belongs to a case", link.purpose.as_str())));
                        }
                        if let Some(case) = link.case_id.filter(|_| link.purpose == LinkPurpose::Reset) {
                            // One live reset link per case: a new one ends the ones sent before.
                            sqlx::query(
                                "UPDATE customer_links SET expires_at = $2 \
                                 WHERE case_id = $1 AND purpose = 'reset' AND used_at IS NULL AND expires_at > $2",
                            )
                            .bind(case.to_string())
                            .bind(micros(link.created_at))
                            .execute(&mut **tx)
                            .await
                            .map_err(Self::map_err)?;
                        }
                        Self::insert_links(tx, keyring, &[(link, token.as_str())]).await
                    }
                    Effect::SpendLink { token } => {
                        let done = sqlx::query(
                            "UPDATE customer_links SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
                        )
                        .bind($crate::recovery::link_token_hash(keyring, token))
                        .bind(micros(at))
                        .execute(&mut **tx)
                        .await
                        .map_err(Self::map_err)?;
                        one_row(done.rows_affected())
                    }
                    Effect::ReleaseLink { token } => {
                        let done = sqlx::query("UPDATE customer_links SET used_at = NULL WHERE token_hash = $1 AND used_at IS NOT NULL")
                            .bind($crate::recovery::link_token_hash(keyring, token))
                            .execute(&mut **tx)
                            .await
                            .map_err(Self::map_err)?;
                        one_row(done.rows_affected())
                    }
                    Effect::EndRecoveries { customer, except_case } => {
                        // Contact changes are frozen: none proposed or waiting takes effect.
                        sqlx::query(
                            "UPDATE contact_changes SET state = 'cancelled' \
                             WHERE customer_id = $1 AND state IN ('awaiting_code', 'confirmed')",
                        )
                        .bind(customer.to_string())
                        .execute(&mut **tx)
                        .await
                        .map_err(Self::map_err)?;
                        sqlx::query(
                            "UPDATE customer_links SET expires_at = $2 \
                             WHERE customer_id = $1 AND purpose IN ('reset', 'enroll') AND used_at IS NULL AND expires_at > $2",
                        )
                        .bind(customer.to_string())
                        .bind(micros(at))
                        .execute(&mut **tx)
                        .await
                        .map_err(Self::map_err)?;
                        sqlx::query(
                            "UPDATE recovery_actions SET state = 'failed', done_at = $2, last_error = 'the account was locked down' \
                             WHERE customer_id = $1 AND state = 'pending' AND case_id <> $3",
                        )
                        .bind(customer.to_string())
                        .bind(micros(at))
                        .bind(except_case.to_string())
                        .execute(&mut **tx)
                        .await
                        .map_err(Self::map_err)?;
                        Ok(())
                    }
                    Effect::SetPassword { customer, hash } => {
                        sqlx::query(
                            "INSERT INTO customer_credentials (customer_id, password_hash, updated_at) VALUES ($1, $2, $3) \
                             ON CONFLICT (customer_id) DO UPDATE SET password_hash = excluded.password_hash, updated_at = excluded.updated_at",
                        )
                        .bind(customer.to_string())
                        .bind(hash)
                        .bind(micros(at))
                        .execute(&mut **tx)
                        .await
                        .map_err(Self::map_err)?;
                        let done = sqlx::query("UPDATE customers SET password_enrolled = $2, failed_logins = 0, updated_at = $3 WHERE id = $1")
                            .bind(customer.to_string())
                            .bind(true)
                            .bind(micros(at))
                            .execute(&mut **tx)
                            .await
                            .map_err(Self::map_err)?;
                        if done.rows_affected() == 0 {
                            return Err(StoreError::NotFound);
                        }
                        Ok(())
                    }
                    Effect::RevokeSessions { customer } => {
                        sqlx::query("UPDATE customer_sessions SET revoked_at = $2 WHERE customer_id = $1 AND revoked_at IS NULL")
                            .bind(customer.to_string())
                            .bind(micros(at))
                            .execute(&mut **tx)
                            .await
                            .map_err(Self::map_err)?;
                        Ok(())
                    }
                    Effect::RequireUnheld { tenant, customer, case } => {
                        // SQLite has one writer: the read below already sees every other
                        // change committed, and none can come before this one commits.
                        if !$at_write {
                            Self::lock_customer(tx, *tenant, *customer).await?;
                        }
                        let open = Self::cases_in(&mut **tx, *tenant, *customer, &HOLDING_STATES).await?;
                        match hold_on(*case, &open) {
                            Some(_) => Err(StoreError::Conflict),
                            None => Ok(()),
                        }
                    }
                    Effect::RequireNoPendingAction { tenant, customer, action } => {
                        if !$at_write {
                            Self::lock_customer(tx, *tenant, *customer).await?;
                        }
                        let pending: bool = sqlx::query_scalar(
                            "SELECT EXISTS (SELECT 1 FROM recovery_actions WHERE state = 'pending' AND tenant_id = $1 \
                             AND customer_id = $2 AND action = $3)",
                        )
                        .bind(tenant.to_string())
                        .bind(customer.to_string())
                        .bind(action.as_str())
                        .fetch_one(&mut **tx)
                        .await
                        .map_err(Self::map_err)?;
                        if pending { Err(StoreError::Conflict) } else { Ok(()) }
                    }
                    Effect::RequireNoOpenCase { tenant, customer, kind, except } => {
                        if !$at_write {
                            Self::lock_customer(tx, *tenant, *customer).await?;
                        }
                        let before: Vec<CaseState> =
                            CaseState::ALL.iter().copied().filter(|s| s.is_before_execution()).collect();
                        let open = Self::cases_in(&mut **tx, *tenant, *customer, &before).await?;
                        if open.iter().any(|c| c.kind == *kind && c.id != *except) {
                            Err(StoreError::Conflict)
                        } else {
                            Ok(())
                        }
                    }
                    Effect::LockCustomer { tenant, customer } => {
                        if !$at_write {
                            Self::lock_customer(tx, *tenant, *customer).await?;
                        }
                        Ok(())
                    }
                    Effect::Webhook(w) => {
                        sqlx::query(
                            "INSERT INTO webhook_deliveries (id, tenant_id, case_id, event_type, payload, state, attempts, \
                             next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6)",
                        )
                        .bind(&w.id)
                        .bind(w.tenant_id.to_string())
                        .bind(w.case_id.map(|c| c.to_string()))
                        .bind(&w.event_type)
                        .bind(&w.payload)
                        .bind(micros(w.created_at))
                        .execute(&mut **tx)
                        .await
                        .map_err(Self::map_err)?;
                        Ok(())
                    }
                    Effect::RemoveFactors { customer, factors } => {
                        use $crate::regain_core::policy::Factor;
                        if factors.contains(&Factor::RecoveryCodes) {
                            sqlx::query("DELETE FROM customer_recovery_codes WHERE customer_id = $1")
                                .bind(customer.to_string())
                                .execute(&mut **tx)
                                .await
                                .map_err(Self::map_err)?;
                        }
                        if factors.contains(&Factor::Totp) {
                            sqlx::query("DELETE FROM customer_totp WHERE customer_id = $1")
                                .bind(customer.to_string())
                                .execute(&mut **tx)
                                .await
                                .map_err(Self::map_err)?;
                        }
                        let done = sqlx::query(
                            "UPDATE customers SET totp_enrolled = CASE WHEN $2 THEN $5 ELSE totp_enrolled END, \
                             recovery_codes_remaining = CASE WHEN $3 THEN 0 ELSE recovery_codes_remaining END, \
                             passkeys = CASE WHEN $4 THEN 0 ELSE passkeys END, updated_at = $6 WHERE id = $1",
                        )
                        .bind(customer.to_string())
                        .bind(factors.contains(&Factor::Totp))
                        .bind(factors.contains(&Factor::RecoveryCodes))
                        .bind(factors.contains(&Factor::Passkeys))
                        .bind(false)
                        .bind(micros(at))
                        .execute(&mut **tx)
                        .await
                        .map_err(Self::map_err)?;
                        if done.rows_affected() == 0 {
                            return Err(StoreError::NotFound);
                        }
                        Ok(())
                    }
                    Effect::ProposeContact { change, code } => {
                        let key = Self::customer_key_in(tx, keyring, change.customer_id).await?;
                        sqlx::query(
                            "UPDATE contact_changes SET state = 'superseded' \
                             WHERE case_id = $1 AND state IN ('awaiting_code', 'confirmed')",
                        )
                        .bind(change.case_id.to_string())
                        .execute(&mut **tx)
                        .await
                        .map_err(Self::map_err)?;
                        let sealed = key.seal_text(&$crate::sealing::contact_change_aad(&change.id, "value"), &change.value);
                        sqlx::query(
                            "INSERT INTO contact_changes (id, tenant_id, case_id, customer_id, kind, value_sealed, masked, \
                             replace_old, code_hash, attempts, attempts_max, code_expires_at, state, created_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $11, 'awaiting_code', $12)",
                        )
                        .bind(&change.id)
                        .bind(change.tenant_id.to_string())
                        .bind(change.case_id.to_string())
                        .bind(change.customer_id.to_string())
                        .bind(change.kind.as_str())
                        .bind(&sealed)
                        .bind(&change.masked)
                        .bind(change.replace)
                        .bind($crate::verification::code_hash(keyring, change.tenant_id, &change.id, code))
                        .bind(i64::from(change.attempts_max))
                        .bind(micros(change.code_expires_at))
                        .bind(micros(change.created_at))
                        .execute(&mut **tx)
                        .await
                        .map_err(Self::map_err)?;
                        Ok(())
                    }
                    Effect::ApplyContactChange { case } => {
                        let row: Option<(String, String, String, String, String, bool, String)> = sqlx::query_as(
                            "SELECT id, tenant_id, customer_id, kind, value_sealed, replace_old, state FROM contact_changes \
                             WHERE case_id = $1 AND state IN ('confirmed', 'sending') ORDER BY created_at DESC LIMIT 1",
                        )
                        .bind(case.to_string())
                        .fetch_optional(&mut **tx)
                        .await
                        .map_err(Self::map_err)?;
                        let Some((id, tenant, customer, kind, sealed, replace, was)) = row else {
                            return Err(StoreError::Conflict);
                        };
                        let tenant = $crate::regain_store::codec::parse_column("contact_changes.tenant_id", &tenant, TenantId::parse)?;
                        let customer = $crate::regain_store::codec::parse_column("contact_changes.customer_id", &customer, CustomerId::parse)?;
                        let kind = $crate::recovery::contact_kind(&kind)?;
                        let key = Self::customer_key_in(tx, keyring, customer).await?;
                        let value = key
                            .open_text(&$crate::sealing::contact_change_aad(&id, "value"), &sealed)
                            .map_err(|_| $crate::sealing::undecryptable("contact_changes"))?;
                        let replaced = if replace {
                            Self::take_contacts(tx, &key, customer, kind).await?
                        } else {
                            Vec::new()
                        };
                        Self::add_contact(tx, keyring, &key, tenant, customer, kind, &value, true, at).await?;
                        let masked: Vec<String> =
                            replaced.iter().map(|c| $crate::recovery::masked_contact(kind, &c.value)).collect();
                        let replaced_sealed = key.seal_text(
                            &$crate::sealing::contact_change_aad(&id, "replaced"),
                            &$crate::recovery::ReplacedContact::list_to_json(&replaced),
                        );
                        // Guarded: a lockdown that cancelled it meanwhile wins (on PostgreSQL this
                        // waits for its row lock and then finds nothing to update).
                        let done = sqlx::query(
                            "UPDATE contact_changes SET state = 'applied', applied_at = $2, replaced_sealed = $3, \
                             replaced_masked = $4 WHERE id = $1 AND state = $5",
                        )
                        .bind(&id)
                        .bind(micros(at))
                        .bind(&replaced_sealed)
                        .bind($crate::serde_json::to_string(&masked).unwrap_or_else(|_| "[]".into()))
                        .bind(&was)
                        .execute(&mut **tx)
                        .await
                        .map_err(Self::map_err)?;
                        one_row(done.rows_affected())?;
                        // A change not yet handed to the account system waits out a lockdown; one
                        // that was may have been made there, so it is recorded for the rollback.
                        if was == "confirmed" {
                            let frozen: Option<String> = sqlx::query_scalar("SELECT status FROM customers WHERE id = $1")
                                .bind(customer.to_string())
                                .fetch_optional(&mut **tx)
                                .await
                                .map_err(Self::map_err)?;
                            if frozen.as_deref() == Some("frozen") {
                                return Err(StoreError::Conflict);
                            }
                        }
                        Self::touch_customer(tx, customer, at).await
                    }
                    Effect::SendContactChange { case } => {
                        let done = sqlx::query(
                            "UPDATE contact_changes SET state = 'sending' \
                             WHERE case_id = $1 AND (state = 'confirmed' OR (state = 'sending' AND reported_at IS NULL))",
                        )
                        .bind(case.to_string())
                        .execute(&mut **tx)
                        .await
                        .map_err(Self::map_err)?;
                        one_row(done.rows_affected())
                    }
                    Effect::UnsendContactChange { case } => {
                        let done = sqlx::query(
                            "UPDATE contact_changes SET state = CASE WHEN reported_at IS NULL THEN 'confirmed' ELSE 'cancelled' END \
                             WHERE case_id = $1 AND state = 'sending'",
                        )
                        .bind(case.to_string())
                        .execute(&mut **tx)
                        .await
                        .map_err(Self::map_err)?;
                        one_row(done.rows_affected())
                    }
                    Effect::ReportContactChange { case } => {
                        let done = sqlx::query(
                            "UPDATE contact_changes SET reported_at = COALESCE(reported_at, $2) WHERE case_id = $1 AND state = 'sending'",
                        )
                        .bind(case.to_string())
                        .bind(micros(at))
                        .execute(&mut **tx)
                        .await
                        .map_err(Self::map_err)?;
                        one_row(done.rows_affected())
                    }
                    Effect::CancelContactChange { case } => {
                        // One update over the case's changes that have not taken effect, so that on
                        // PostgreSQL it waits for a concurrent send's row lock and then sees it.
                        let states: Vec<String> = sqlx::query_scalar(
                            "UPDATE contact_changes SET state = CASE WHEN state = 'sending' THEN 'sending' ELSE 'cancelled' END \
                             WHERE case_id = $1 AND state IN ('awaiting_code', 'confirmed', 'sending') RETURNING state",
                        )
                        .bind(case.to_string())
                        .fetch_all(&mut **tx)
                        .await
                        .map_err(Self::map_err)?;
                        if states.iter().any(|s| s == "sending") {
                            return Err(StoreError::Conflict);
                        }
                        Ok(())
                    }
                    Effect::RevertContactChange { id } => {
                        let row: Option<(String, String, String, String, Option<String>)> = sqlx::query_as(
                            "SELECT tenant_id, customer_id, kind, value_sealed, replaced_sealed FROM contact_changes \
                             WHERE id = $1 AND state = 'applied'",
                        )
                        .bind(id)
                        .fetch_optional(&mut **tx)
                        .await
                        .map_err(Self::map_err)?;
                        let Some((tenant, customer, kind, sealed, replaced_sealed)) = row else {
                            return Err(StoreError::Conflict);
                        };
                        let tenant = $crate::regain_store::codec::parse_column("contact_changes.tenant_id", &tenant, TenantId::parse)?;
                        let customer = $crate::regain_store::codec::parse_column("contact_changes.customer_id", &customer, CustomerId::parse)?;
                        let kind = $crate::recovery::contact_kind(&kind)?;
                        let key = Self::customer_key_in(tx, keyring, customer).await?;
                        let value = key
                            .open_text(&$crate::sealing::contact_change_aad(id, "value"), &sealed)
                            .map_err(|_| $crate::sealing::undecryptable("contact_changes"))?;
                        Self::remove_contact(tx, keyring, tenant, customer, kind, &value).await?;
                        if let Some(replaced_sealed) = replaced_sealed {
                            let text = key
                                .open_text(&$crate::sealing::contact_change_aad(id, "replaced"), &replaced_sealed)
                                .map_err(|_| $crate::sealing::undecryptable("contact_changes"))?;
                            for old in $crate::recovery::ReplacedContact::list_from_json(&text)? {
                                let since = $crate::regain_store::codec::timestamp(old.added_at);
                                Self::add_contact(tx, keyring, &key, tenant, customer, kind, &old.value, old.verified, since).await?;
                            }
                        }
                        let done = sqlx::query("UPDATE contact_changes SET state = 'reverted' WHERE id = $1 AND state = 'applied'")
                            .bind(id)
                            .execute(&mut **tx)
                            .await
                            .map_err(Self::map_err)?;
                        one_row(done.rows_affected())?;
                        Self::touch_customer(tx, customer, at).await
                    }
                    Effect::RemoveContact { customer, kind, value } => {
                        let tenant: Option<String> = sqlx::query_scalar("SELECT tenant_id FROM customers WHERE id = $1")
                            .bind(customer.to_string())
                            .fetch_optional(&mut **tx)
                            .await
                            .map_err(Self::map_err)?;
                        let tenant = tenant.ok_or(StoreError::NotFound)?;
                        let tenant = $crate::regain_store::codec::parse_column("customers.tenant_id", &tenant, TenantId::parse)?;
                        Self::remove_contact(tx, keyring, tenant, *customer, *kind, value).await?;
                        Self::touch_customer(tx, *customer, at).await
                    }
                    Effect::ClearPassword { customer } => {
                        sqlx::query("DELETE FROM customer_credentials WHERE customer_id = $1")
                            .bind(customer.to_string())
                            .execute(&mut **tx)
                            .await
                            .map_err(Self::map_err)?;
                        let done = sqlx::query("UPDATE customers SET password_enrolled = $2, updated_at = $3 WHERE id = $1")
                            .bind(customer.to_string())
                            .bind(false)
                            .bind(micros(at))
                            .execute(&mut **tx)
                            .await
                            .map_err(Self::map_err)?;
                        if done.rows_affected() == 0 {
                            return Err(StoreError::NotFound);
                        }
                        Ok(())
                    }
                    Effect::SetStatus { customer, status } => {
                        let done = sqlx::query(
                            "UPDATE customers SET status = $2, updated_at = $3, \
                             failed_logins = CASE WHEN $2 = 'active' THEN 0 ELSE failed_logins END WHERE id = $1",
                        )
                        .bind(customer.to_string())
                        .bind(status.as_str())
                        .bind(micros(at))
                        .execute(&mut **tx)
                        .await
                        .map_err(Self::map_err)?;
                        if done.rows_affected() == 0 {
                            return Err(StoreError::NotFound);
                        }
                        Ok(())
                    }
                }
            }

            async fn touch_customer(tx: &mut Tx, customer: CustomerId, at: Timestamp) -> StoreResult<()> {
                sqlx::query("UPDATE customers SET updated_at = $2 WHERE id = $1")
                    .bind(customer.to_string())
                    .bind(micros(at))
                    .execute(&mut **tx)
                    .await
                    .map_err(Self::map_err)?;
                Ok(())
            }

            /// Removes every contact of `kind` the customer has, returning them opened.
            async fn take_contacts(
                tx: &mut Tx,
                key: &$crate::regain_crypto::DataKey,
                customer: CustomerId,
                kind: $crate::regain_store::ContactKind,
            ) -> StoreResult<Vec<$crate::recovery::ReplacedContact>> {
                let (table, sealed_col, _) = $crate::recovery::contact_table(kind);
                let rows: Vec<(i64, String, bool, i64)> = sqlx::query_as(&format!(
                    "SELECT position, {sealed_col}, verified, added_at FROM {table} WHERE customer_id = $1 ORDER BY position"
                ))
                .bind(customer.to_string())
                .fetch_all(&mut **tx)
                .await
                .map_err(Self::map_err)?;
                let mut taken = Vec::new();
                for (position, sealed, verified, added_at) in rows {
                    let position = usize::try_from(position).unwrap_or(0);
                    let value = $crate::sealing::open_contact(key, customer, kind, position, &sealed)?;
                    taken.push($crate::recovery::ReplacedContact { value, verified, added_at });
                }
                sqlx::query(&format!("DELETE FROM {table} WHERE customer_id = $1"))
                    .bind(customer.to_string())
                    .execute(&mut **tx)
                    .await
                    .map_err(Self::map_err)?;
                Ok(taken)
            }

            /// Adds a contact point after the customer's last one of its kind.
            #[allow(clippy::too_many_arguments)]
            async fn add_contact(
                tx: &mut Tx,
                keyring: &Keyring,
                key: &$crate::regain_crypto::DataKey,
                tenant: TenantId,
                customer: CustomerId,
                kind: $crate::regain_store::ContactKind,
                value: &str,
                verified: bool,
                added_at: Timestamp,
            ) -> StoreResult<()> {
                let (table, sealed_col, bidx_col) = $crate::recovery::contact_table(kind);
                let last: Option<i64> = sqlx::query_scalar(&format!("SELECT MAX(position) FROM {table} WHERE customer_id = $1"))
                    .bind(customer.to_string())
                    .fetch_one(&mut **tx)
                    .await
                    .map_err(Self::map_err)?;
                let position = last.map_or(0, |p| p + 1);
                let (sealed, bidx) = $crate::sealing::seal_contact(
                    keyring,
                    key,
                    tenant,
                    customer,
                    kind,
                    usize::try_from(position).unwrap_or(0),
                    value,
                )?;
                sqlx::query(&format!(
                    "INSERT INTO {table} (customer_id, position, tenant_id, {sealed_col}, {bidx_col}, verified, added_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)"
                ))
                .bind(customer.to_string())
                .bind(position)
                .bind(tenant.to_string())
                .bind(&sealed)
                .bind(&bidx)
                .bind(verified)
                .bind(micros(added_at))
                .execute(&mut **tx)
                .await
                .map_err(Self::map_err)?;
                Ok(())
            }

            /// Removes the customer's contact point `value` of `kind`; it must be there.
            async fn remove_contact(
                tx: &mut Tx,
                keyring: &Keyring,
                tenant: TenantId,
                customer: CustomerId,
                kind: $crate::regain_store::ContactKind,
                value: &str,
            ) -> StoreResult<()> {
                let (table, _, bidx_col) = $crate::recovery::contact_table(kind);
                let bidx = match kind {
                    $crate::regain_store::ContactKind::Email => {
                        let address = $crate::regain_core::EmailAddress::parse("email", value)
                            .map_err(|e| StoreError::Corrupt(format!("a contact to remove: {e}")))?;
                        $crate::sealing::blind(keyring, tenant, $crate::sealing::field::EMAIL, &address.normalized())
                    }
                    $crate::regain_store::ContactKind::Phone => {
                        $crate::sealing::blind(keyring, tenant, $crate::sealing::field::PHONE, value)
                    }
                };
                let done = sqlx::query(&format!("DELETE FROM {table} WHERE customer_id = $1 AND {bidx_col} = $2"))
                    .bind(customer.to_string())
                    .bind(&bidx)
                    .execute(&mut **tx)
                    .await
                    .map_err(Self::map_err)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::Conflict);
                }
                Ok(())
            }

            async fn x_contact_change(&self, tenant: TenantId, case: CaseId) -> StoreResult<Option<ContactChange>> {
                let row: Option<$crate::recovery::ContactChangeRow> = sqlx::query_as(&format!(
                    "SELECT {} FROM contact_changes WHERE tenant_id = $1 AND case_id = $2 ORDER BY created_at DESC, id DESC LIMIT 1",
                    $crate::recovery::CONTACT_CHANGE_COLUMNS
                ))
                .bind(tenant.to_string())
                .bind(case.to_string())
                .fetch_optional(self.read_pool())
                .await
                .map_err(Self::map_err)?;
                row.map($crate::recovery::ContactChangeRow::into_domain).transpose()
            }

            async fn x_contact_change_values(&self, tenant: TenantId, id: &str) -> StoreResult<Option<(String, Vec<(String, bool)>)>> {
                let keyring = self.keys.get()?;
                let row: Option<(String, String, Option<String>, Option<Vec<u8>>)> = sqlx::query_as(
                    "SELECT customer_id, value_sealed, replaced_sealed, \
                     (SELECT wrapped FROM data_keys WHERE subject = contact_changes.customer_id) \
                     FROM contact_changes WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.to_string())
                .bind(id)
                .fetch_optional(self.read_pool())
                .await
                .map_err(Self::map_err)?;
                let Some((customer, sealed, replaced, Some(wrapped))) = row else { return Ok(None) };
                let key = keyring.data_key(&customer, &wrapped).map_err(|_| $crate::sealing::undecryptable("data_keys"))?;
                let open = |part: &str, sealed: &str| {
                    key.open_text(&$crate::sealing::contact_change_aad(id, part), sealed)
                        .map_err(|_| $crate::sealing::undecryptable("contact_changes"))
                };
                let value = open("value", &sealed)?;
                let replaced = match replaced {
                    None => Vec::new(),
                    Some(sealed) => $crate::recovery::ReplacedContact::list_from_json(&open("replaced", &sealed)?)?
                        .into_iter()
                        .map(|c| (c.value, c.verified))
                        .collect(),
                };
                Ok(Some((value, replaced)))
            }

            async fn x_recent_contact_changes(
                &self,
                tenant: TenantId,
                customer: CustomerId,
                since: Timestamp,
            ) -> StoreResult<Vec<ContactChange>> {
                let rows: Vec<$crate::recovery::ContactChangeRow> = sqlx::query_as(&format!(
                    "SELECT {} FROM contact_changes WHERE tenant_id = $1 AND customer_id = $2 \
                     AND ((state IN ('applied', 'reverted') AND applied_at >= $3) OR state = 'sending') \
                     ORDER BY COALESCE(applied_at, confirmed_at, created_at) DESC, id DESC",
                    $crate::recovery::CONTACT_CHANGE_COLUMNS
                ))
                .bind(tenant.to_string())
                .bind(customer.to_string())
                .bind(micros(since))
                .fetch_all(self.read_pool())
                .await
                .map_err(Self::map_err)?;
                rows.into_iter().map($crate::recovery::ContactChangeRow::into_domain).collect()
            }

            async fn x_confirm_contact_change(
                &self,
                case: &Case,
                code: &str,
                ctx: &AttemptContext,
                limit: &FailureLimit,
            ) -> StoreResult<ContactConfirm> {
                let Some(customer) = case.customer_id else {
                    return Ok(ContactConfirm::NonePending);
                };
                let keyring = self.keys.get()?;
                let mut tx = self.write_tx().await?;
                Self::lock_case(&mut tx, case).await?;
                Self::lock_customer(&mut tx, case.tenant_id, customer).await?;
                if let Some(hold) = Self::hold_in(&mut *tx, case.tenant_id, customer, ctx.at).await? {
                    return Ok(ContactConfirm::Held { until: hold.until });
                }
                // Every check is an attempt, right or wrong; the increment takes the row (T3).
                let row: Option<(String, String, String, String, i64, i64, i64)> = sqlx::query_as(
                    "UPDATE contact_changes SET attempts = attempts + 1 WHERE case_id = $1 AND state = 'awaiting_code' \
                     RETURNING id, kind, masked, code_hash, attempts, attempts_max, code_expires_at",
                )
                .bind(case.id.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(Self::map_err)?;
                let Some((id, kind, masked, hash, attempts, attempts_max, expires_at)) = row else {
                    return Ok(ContactConfirm::NonePending);
                };
                let kind = $crate::recovery::contact_kind(&kind)?;
                let method = match kind {
                    $crate::regain_store::ContactKind::Email => $crate::regain_core::policy::Method::Email,
                    $crate::regain_store::ContactKind::Phone => $crate::regain_core::policy::Method::Sms,
                };
                let close = |state: &'static str| {
                    sqlx::query("UPDATE contact_changes SET state = $2 WHERE id = $1").bind(id.clone()).bind(state)
                };
                let checked = |passed: bool, detail: &str| CaseEvent::VerificationChecked {
                    method,
                    passed,
                    detail: Some(detail.to_owned()),
                    destination: Some(masked.clone()),
                };
                if ctx.at >= $crate::regain_store::codec::timestamp(expires_at) {
                    close("expired").execute(&mut *tx).await.map_err(Self::map_err)?;
                    Self::append_at(&mut tx, &keyring, case, ctx.at, &[checked(false, "new_contact_code_expired")], &ctx.actor).await?;
                    tx.commit().await.map_err(Self::map_err)?;
                    return Ok(ContactConfirm::Expired);
                }
                let presented = $crate::verification::code_hash(&keyring, case.tenant_id, &id, code);
                let right = $crate::verification::hashes_equal(&presented, &hash) && attempts <= attempts_max;
                if right {
                    sqlx::query("UPDATE contact_changes SET state = 'confirmed', confirmed_at = $2 WHERE id = $1")
                        .bind(&id)
                        .bind(micros(ctx.at))
                        .execute(&mut *tx)
                        .await
                        .map_err(Self::map_err)?;
                    let event = CaseEvent::Action {
                        action: $crate::regain_core::action::ActionKind::ContactChange,
                        outcome: $crate::regain_core::action::ActionOutcome::Confirmed,
                        detail: Some(format!("the new {} {masked} is proven by the code sent to it", kind.as_str())),
                    };
                    Self::append_at(&mut tx, &keyring, case, ctx.at, &[event], &ctx.actor).await?;
                    tx.commit().await.map_err(Self::map_err)?;
                    return Ok(ContactConfirm::Confirmed { masked });
                }
                let exhausted = attempts >= attempts_max;
                if exhausted {
                    close("exhausted").execute(&mut *tx).await.map_err(Self::map_err)?;
                }
                let detail = if exhausted { "new_contact_attempts_exhausted" } else { "new_contact_wrong_code" };
                let attempt = NewAttempt {
                    method: method.as_str().to_owned(),
                    passed: false,
                    counted: true,
                    detail: Some(detail.to_owned()),
                    destination: Some(masked.clone()),
                    destination_since: None,
                };
                Self::append_at(&mut tx, &keyring, case, ctx.at, &[checked(false, detail)], &ctx.actor).await?;
                let recorded = Self::insert_attempt(&mut tx, &keyring, case, customer, &attempt, ctx, limit).await?;
                tx.commit().await.map_err(Self::map_err)?;
                Ok(if exhausted {
                    ContactConfirm::Exhausted { recorded }
                } else {
                    let left = attempts_max.saturating_sub(attempts);
                    ContactConfirm::Wrong { attempts_left: u32::try_from(left).unwrap_or(0), recorded }
                })
            }

            async fn x_factor_times(&self, tenant: TenantId, customer: CustomerId) -> StoreResult<FactorTimes> {
                let row: (Option<i64>, Option<i64>, Option<i64>) = sqlx::query_as(
                    "SELECT \
                     (SELECT k.updated_at FROM customer_credentials k JOIN customers c ON c.id = k.customer_id \
                       WHERE c.tenant_id = $1 AND k.customer_id = $2), \
                     (SELECT MAX(confirmed_at) FROM customer_totp WHERE tenant_id = $1 AND customer_id = $2), \
                     (SELECT MAX(created_at) FROM customer_recovery_codes WHERE tenant_id = $1 AND customer_id = $2)",
                )
                .bind(tenant.to_string())
                .bind(customer.to_string())
                .fetch_one(self.read_pool())
                .await
                .map_err(Self::map_err)?;
                Ok(FactorTimes {
                    password_changed_at: row.0.map($crate::regain_store::codec::timestamp),
                    totp_confirmed_at: row.1.map($crate::regain_store::codec::timestamp),
                    recovery_codes_issued_at: row.2.map($crate::regain_store::codec::timestamp),
                })
            }

            async fn x_claim_actions(&self, now: Timestamp, lease_until: Timestamp, limit: u32) -> StoreResult<Vec<ClaimedAction>> {
                let mut tx = self.write_tx().await?;
                let rows: Vec<$crate::recovery::ClaimRow> = sqlx::query_as(if $at_write {
                    $crate::recovery::ACTION_CLAIM_ONE_WRITER
                } else {
                    $crate::recovery::ACTION_CLAIM_SKIP_LOCKED
                })
                .bind(micros(now))
                .bind(micros(lease_until))
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await
                .map_err(Self::map_err)?;
                tx.commit().await.map_err(Self::map_err)?;
                rows.into_iter().map($crate::recovery::ClaimRow::into_domain).collect()
            }

            async fn x_claim_webhooks(&self, now: Timestamp, lease_until: Timestamp, limit: u32) -> StoreResult<Vec<WebhookDelivery>> {
                let mut tx = self.write_tx().await?;
                let rows: Vec<$crate::recovery::WebhookRow> = sqlx::query_as(if $at_write {
                    $crate::recovery::WEBHOOK_CLAIM_ONE_WRITER
                } else {
                    $crate::recovery::WEBHOOK_CLAIM_SKIP_LOCKED
                })
                .bind(micros(now))
                .bind(micros(lease_until))
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await
                .map_err(Self::map_err)?;
                tx.commit().await.map_err(Self::map_err)?;
                rows.into_iter().map($crate::recovery::WebhookRow::into_domain).collect()
            }

            async fn x_finish_webhook(&self, id: &str, result: &WebhookResult, now: Timestamp) -> StoreResult<()> {
                let mut tx = self.write_tx().await?;
                let query = match result {
                    WebhookResult::Delivered { status } => sqlx::query(
                        "UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1, last_status = $2, \
                         last_error = NULL, delivered_at = $3 WHERE id = $1 AND state = 'pending'",
                    )
                    .bind(id)
                    .bind(i64::from(*status))
                    .bind(micros(now)),
                    WebhookResult::Retry { at, status, error } => sqlx::query(
                        "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = $2, last_status = $3, \
                         last_error = $4 WHERE id = $1 AND state = 'pending'",
                    )
                    .bind(id)
                    .bind(micros(*at))
                    .bind(status.map(i64::from))
                    .bind(error.clone()),
                    WebhookResult::Dead { status, error } => sqlx::query(
                        "UPDATE webhook_deliveries SET state = 'dead', attempts = attempts + 1, last_status = $2, \
                         last_error = $3 WHERE id = $1 AND state = 'pending'",
                    )
                    .bind(id)
                    .bind(status.map(i64::from))
                    .bind(error.clone()),
                };
                query.execute(&mut *tx).await.map_err(Self::map_err)?;
                tx.commit().await.map_err(Self::map_err)
            }

            async fn x_webhook_deliveries(
                &self,
                tenant: TenantId,
                case: Option<CaseId>,
                cursor: Option<&str>,
                limit: u32,
            ) -> StoreResult<Vec<WebhookDelivery>> {
                let rows: Vec<$crate::recovery::WebhookRow> = sqlx::query_as(&format!(
                    "SELECT {} FROM webhook_deliveries WHERE tenant_id = $1 AND ($2 IS NULL OR case_id = $2) \
                     AND ($3 IS NULL OR created_at < (SELECT created_at FROM webhook_deliveries WHERE id = $3) \
                          OR (created_at = (SELECT created_at FROM webhook_deliveries WHERE id = $3) AND id < $3)) \
                     ORDER BY created_at DESC, id DESC LIMIT $4",
                    $crate::recovery::WEBHOOK_COLUMNS
                ))
                .bind(tenant.to_string())
                .bind(case.map(|c| c.to_string()))
                .bind(cursor)
                .bind(i64::from(limit))
                .fetch_all(self.read_pool())
                .await
                .map_err(Self::map_err)?;
                rows.into_iter().map($crate::recovery::WebhookRow::into_domain).collect()
            }

            /// A failed attempt (`counted`) or a wait.
            async fn x_retry_action(&self, id: &str, at: Timestamp, error: &str, counted: bool) -> StoreResult<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "UPDATE recovery_actions SET attempts = attempts + $4, next_attempt_at = $2, last_error = $3 \
                     WHERE id = $1 AND state = 'pending'",
                )
                .bind(id)
                .bind(micros(at))
                .bind(error)
                .bind(i64::from(counted))
                .execute(&mut *tx)
                .await
                .map_err(Self::map_err)?;
                tx.commit().await.map_err(Self::map_err)
            }

            async fn x_case_actions(&self, tenant: TenantId, case: CaseId) -> StoreResult<Vec<ActionEntry>> {
                let rows: Vec<$crate::recovery::ActionRow> = sqlx::query_as(
                    "SELECT id, action, connector, state, attempts, last_error, next_attempt_at, created_at, done_at \
                     FROM recovery_actions WHERE tenant_id = $1 AND case_id = $2 ORDER BY created_at, id",
                )
                .bind(tenant.to_string())
                .bind(case.to_string())
                .fetch_all(self.read_pool())
                .await
                .map_err(Self::map_err)?;
                rows.into_iter().map($crate::recovery::ActionRow::into_domain).collect()
            }

            async fn x_customer_link(&self, token: &str) -> StoreResult<Option<CustomerLink>> {
                let keyring = self.keys.get()?;
                let row: Option<$crate::recovery::LinkRow> = sqlx::query_as(
                    "SELECT id, purpose, tenant_id, case_id, customer_id, destination, expires_at, used_at FROM customer_links WHERE token_hash = $1",
                )
                .bind($crate::recovery::link_token_hash(&keyring, token))
                .fetch_optional(self.read_pool())
                .await
                .map_err(Self::map_err)?;
                row.map($crate::recovery::LinkRow::into_domain).transpose()
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::numbered_rows;

    #[test]
    fn rows_are_numbered_on_from_the_first() {
        assert_eq!(numbered_rows(1, 2, "($1, $2, 'x', $2)"), "($1, $2, 'x', $2)");
        assert_eq!(numbered_rows(3, 2, "($1, $2)"), "($1, $2), ($3, $4), ($5, $6)");
        assert_eq!(numbered_rows(2, 10, "($1, $10)"), "($1, $10), ($11, $20)");
    }
}
