//! Executing recoveries' SQL (issue 6): the action queue, reset links, and the effects a case
//! change applies in its own transaction.

use regain_core::action::ActionKind;
use regain_core::{CaseId, CustomerId, TenantId};
use regain_crypto::Keyring;
use regain_store::codec::{parse_column, timestamp};
use regain_store::{ActionEntry, ClaimedAction, CustomerLink, LinkPurpose, StoreError, StoreResult, WebhookDelivery};

pub fn link_token_hash(keyring: &Keyring, token: &str) -> String {
    keyring.index().blind("", "customer_link", token)
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
    pub case_id: String,
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
            case_id: parse_column("customer_links.case_id", &self.case_id, CaseId::parse)?,
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
                        if link.purpose == LinkPurpose::Reset {
                            // One live reset link per case: a new one ends the ones sent before.
                            sqlx::query(
                                "UPDATE customer_links SET expires_at = $2 \
                                 WHERE case_id = $1 AND purpose = 'reset' AND used_at IS NULL AND expires_at > $2",
                            )
                            .bind(link.case_id.to_string())
                            .bind(micros(link.created_at))
                            .execute(&mut **tx)
                            .await
                            .map_err(Self::map_err)?;
                        }
                        sqlx::query(
                            "INSERT INTO customer_links (id, purpose, tenant_id, case_id, customer_id, token_hash, destination, expires_at, created_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                        )
                        .bind(&link.id)
                        .bind(link.purpose.as_str())
                        .bind(link.tenant_id.to_string())
                        .bind(link.case_id.to_string())
                        .bind(link.customer_id.to_string())
                        .bind($crate::recovery::link_token_hash(keyring, token))
                        .bind(&link.destination)
                        .bind(micros(link.expires_at))
                        .bind(micros(link.created_at))
                        .execute(&mut **tx)
                        .await
                        .map_err(Self::map_err)?;
                        Ok(())
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
                    Effect::RemoveFactors { customer, totp } => {
                        sqlx::query("DELETE FROM customer_recovery_codes WHERE customer_id = $1")
                            .bind(customer.to_string())
                            .execute(&mut **tx)
                            .await
                            .map_err(Self::map_err)?;
                        if *totp {
                            sqlx::query("DELETE FROM customer_totp WHERE customer_id = $1")
                                .bind(customer.to_string())
                                .execute(&mut **tx)
                                .await
                                .map_err(Self::map_err)?;
                        }
                        let done = sqlx::query(
                            "UPDATE customers SET totp_enrolled = CASE WHEN $2 THEN $3 ELSE totp_enrolled END, \
                             recovery_codes_remaining = 0, updated_at = $4 WHERE id = $1",
                        )
                        .bind(customer.to_string())
                        .bind(*totp)
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

            async fn x_retry_action(&self, id: &str, at: Timestamp, error: &str) -> StoreResult<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "UPDATE recovery_actions SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3 \
                     WHERE id = $1 AND state = 'pending'",
                )
                .bind(id)
                .bind(micros(at))
                .bind(error)
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
