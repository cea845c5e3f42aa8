//! Identity verification's SQL (issue 4): policies, challenges, attempts and holds, the
//! built-in directory's second factors, the outbox. [`impl_sql_verification!`] adds inherent
//! methods (`v_*`) that the `Store` implementation in [`crate::impl_sql_store!`] calls.
//!
//! Secrets go in once and stay as keyed hashes under the keyring's index key (SECURITY.md T2):
//! a code is bound to its challenge's id, a recovery code to its customer, so a hash copied to
//! another row matches nothing. TOTP secrets and outgoing messages are sealed under the
//! customer's data key, so an erasure takes them too.

use regain_core::{CustomerId, TenantId};
use regain_crypto::{DataKey, Keyring};
use regain_store::{StoreError, StoreResult};
use serde_json::{json, Value};

use crate::sealing::undecryptable;

/// The keyed hash of a code sent in challenge `challenge`.
pub fn code_hash(keyring: &Keyring, tenant: TenantId, challenge: &str, code: &str) -> String {
    keyring.index().blind(&tenant.to_string(), &format!("challenge:{challenge}"), code)
}

/// The keyed hash of a confirmation link's token: links are looked up by it, in any tenant.
pub fn link_hash(keyring: &Keyring, token: &str) -> String {
    keyring.index().blind("", "link", token)
}

pub fn recovery_code_hash(keyring: &Keyring, tenant: TenantId, customer: CustomerId, code: &str) -> String {
    keyring.index().blind(&tenant.to_string(), &format!("recovery_code:{customer}"), code)
}

/// Whether two hashes are equal, in time that does not depend on where they differ.
pub fn hashes_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn totp_aad(customer: CustomerId) -> String {
    format!("customer_totp:{customer}")
}

fn message_aad(id: &str) -> String {
    format!("outbox:{id}")
}

pub fn seal_totp(key: &DataKey, customer: CustomerId, secret: &[u8]) -> String {
    key.seal_text(&totp_aad(customer), &data_encoding::BASE32_NOPAD.encode(secret))
}

pub fn open_totp(key: &DataKey, customer: CustomerId, sealed: &str) -> StoreResult<Vec<u8>> {
    let text = key.open_text(&totp_aad(customer), sealed).map_err(|_| undecryptable("customer_totp.secret_sealed"))?;
    data_encoding::BASE32_NOPAD
        .decode(text.as_bytes())
        .map_err(|_| StoreError::Corrupt("customer_totp.secret_sealed does not parse".into()))
}

/// A message's address, subject and body, sealed together.
pub fn seal_message(key: &DataKey, id: &str, to: &str, subject: &str, body: &str) -> String {
    key.seal_text(&message_aad(id), &json!({"to": to, "subject": subject, "body": body}).to_string())
}

pub fn open_message(key: &DataKey, id: &str, sealed: &str) -> StoreResult<(String, String, String)> {
    let text = key.open_text(&message_aad(id), sealed).map_err(|_| undecryptable("outbox.sealed"))?;
    let v: Value =
        serde_json::from_str(&text).map_err(|_| StoreError::Corrupt("outbox.sealed does not parse".into()))?;
    let field = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| StoreError::Corrupt(format!("outbox.sealed: no {k}")))
    };
    Ok((field("to")?, field("subject")?, field("body")?))
}

#[derive(sqlx::FromRow)]
pub struct PolicyRow {
    pub tenant_id: String,
    pub version: i64,
    pub document: String,
    pub created_by: String,
    pub created_at: i64,
}

#[derive(sqlx::FromRow)]
pub struct ChallengeRow {
    pub id: String,
    pub tenant_id: String,
    pub case_id: String,
    pub customer_id: String,
    pub method: String,
    pub destination: String,
    pub destination_since: i64,
    pub secret_hash: String,
    pub attempts: i64,
    pub attempts_max: i64,
    pub state: String,
    pub expires_at: i64,
}

#[derive(sqlx::FromRow)]
pub struct AttemptRow {
    pub case_id: Option<String>,
    pub customer_id: String,
    pub method: String,
    pub passed: bool,
    pub counted: bool,
    pub detail: Option<String>,
    pub destination: Option<String>,
    pub destination_since: Option<i64>,
    pub at: i64,
}

#[derive(sqlx::FromRow)]
pub struct OutboxRow {
    pub id: String,
    pub tenant_id: String,
    pub customer_id: String,
    pub channel: String,
    pub sealed: Option<String>,
    pub attempts: i64,
    pub wrapped_key: Option<Vec<u8>>,
}

#[derive(sqlx::FromRow)]
pub struct OutboxLogRow {
    pub id: String,
    pub case_id: Option<String>,
    pub channel: String,
    pub destination: String,
    pub template: String,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

/// Claims due messages where one writer runs at a time (SQLite). Binds: now, lease end, limit.
pub const OUTBOX_CLAIM_ONE_WRITER: &str = "UPDATE outbox SET next_attempt_at = $2 WHERE id IN \
     (SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $3) \
     AND state = 'pending' AND next_attempt_at <= $1 \
     RETURNING id, tenant_id, customer_id, channel, sealed, attempts, \
     (SELECT wrapped FROM data_keys WHERE subject = outbox.customer_id) AS wrapped_key";

/// Claims due messages among concurrent claimers (PostgreSQL): rows another claimer holds are
/// skipped, never waited on.
pub const OUTBOX_CLAIM_SKIP_LOCKED: &str = "UPDATE outbox SET next_attempt_at = $2 WHERE id IN \
     (SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $3 \
      FOR UPDATE SKIP LOCKED) \
     AND state = 'pending' AND next_attempt_at <= $1 \
     RETURNING id, tenant_id, customer_id, channel, sealed, attempts, \
     (SELECT wrapped FROM data_keys WHERE subject = outbox.customer_id) AS wrapped_key";

pub const CHALLENGE_COLUMNS: &str = "id, tenant_id, case_id, customer_id, method, destination, destination_since, \
     secret_hash, attempts, attempts_max, state, expires_at";

/// The inherent methods behind the `Store`'s verification operations, for `$store` over `$db`.
/// Expanded inside [`crate::impl_sql_store!`], which brings the names it uses into scope.
#[macro_export]
#[doc(hidden)]
macro_rules! impl_sql_verification {
    ($store:ty, $at_write:literal) => {
        impl $store {
            /// Serializes writers of one case's timeline (a row lock on PostgreSQL; SQLite has
            /// one writer) without changing the case — and only while the case is as the caller
            /// read it: a case that moved on meanwhile (cancelled, escalated, decided) is a
            /// conflict, so no proof lands on a case in a state it was not meant for.
            async fn lock_case(tx: &mut Tx, case: &Case) -> StoreResult<()> {
                let done = sqlx::query("UPDATE cases SET version = version WHERE id = $1 AND tenant_id = $2 AND version = $3")
                    .bind(case.id.to_string())
                    .bind(case.tenant_id.to_string())
                    .bind(case.version)
                    .execute(&mut **tx)
                    .await
                    .map_err(Self::map_err)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::Conflict);
                }
                Ok(())
            }

            /// Serializes attempts on one customer, across cases: the failure count and the
            /// hold are read and written under this lock (on PostgreSQL, where writers run
            /// concurrently, two failures on two cases could otherwise both miss the limit).
            async fn lock_customer(tx: &mut Tx, tenant: TenantId, customer: CustomerId) -> StoreResult<()> {
                sqlx::query("UPDATE customers SET updated_at = updated_at WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.to_string())
                    .bind(customer.to_string())
                    .execute(&mut **tx)
                    .await
                    .map_err(Self::map_err)?;
                Ok(())
            }

            /// Appends verification events to the case's timeline at `at`, the case unchanged.
            async fn append_at(
                tx: &mut Tx,
                keyring: &Keyring,
                case: &Case,
                at: Timestamp,
                events: &[CaseEvent],
                actor: &Actor,
            ) -> StoreResult<()> {
                if events.is_empty() {
                    return Ok(());
                }
                let Some(key) = Self::case_key_in(tx, keyring, case.id).await? else {
                    return Err(StoreError::Precondition(
                        "this case's personal data was erased; it takes no more changes".into(),
                    ));
                };
                let mut at_case = case.clone();
                at_case.updated_at = at;
                Self::append_events(tx, &at_case, &key, events, actor).await
            }

            async fn customer_key_in(tx: &mut Tx, keyring: &Keyring, customer: CustomerId) -> StoreResult<DataKey> {
                let wrapped: Option<Vec<u8>> = sqlx::query_scalar("SELECT wrapped FROM data_keys WHERE subject = $1")
                    .bind(customer.to_string())
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(Self::map_err)?;
                let wrapped = wrapped.ok_or(StoreError::NotFound)?;
                keyring
                    .data_key(&customer.to_string(), &wrapped)
                    .map_err(|_| $crate::sealing::undecryptable("data_keys"))
            }

            async fn insert_message(tx: &mut Tx, keyring: &Keyring, m: &NewMessage) -> StoreResult<()> {
                Self::insert_messages(tx, keyring, &[m]).await
            }

            /// Queues `messages` in one statement, each sealed under its customer's key (read
            /// once per customer: a change's messages are usually all to one).
            async fn insert_messages(tx: &mut Tx, keyring: &Keyring, messages: &[&NewMessage]) -> StoreResult<()> {
                if messages.is_empty() {
                    return Ok(());
                }
                let mut keys: Vec<(CustomerId, DataKey)> = Vec::new();
                let mut sealed = Vec::with_capacity(messages.len());
                for m in messages {
                    let at = match keys.iter().position(|(c, _)| *c == m.customer_id) {
                        Some(at) => at,
                        None => {
                            keys.push((m.customer_id, Self::customer_key_in(tx, keyring, m.customer_id).await?));
                            keys.len() - 1
                        }
                    };
                    sealed.push($crate::verification::seal_message(&keys[at].1, &m.id, &m.to, &m.subject, &m.body));
                }
                let rows: Vec<_> = messages.iter().zip(&sealed).collect();
                for chunk in rows.chunks($crate::ROWS_PER_INSERT) {
                    let sql = format!(
                        "INSERT INTO outbox (id, tenant_id, case_id, customer_id, channel, destination, template, sealed, \
                         state, attempts, next_attempt_at, created_at) VALUES {}",
                        $crate::recovery::numbered_rows(chunk.len(), 9, "($1, $2, $3, $4, $5, $6, $7, $8, 'pending', 0, $9, $9)")
                    );
                    let mut query = sqlx::query(&sql);
                    for (m, sealed) in chunk {
                        query = query
                            .bind(&m.id)
                            .bind(m.tenant_id.to_string())
                            .bind(m.case_id.map(|c| c.to_string()))
                            .bind(m.customer_id.to_string())
                            .bind(&m.channel)
                            .bind(&m.destination)
                            .bind(&m.template)
                            .bind(sealed)
                            .bind(micros(m.created_at));
                    }
                    query.execute(&mut **tx).await.map_err(Self::map_err)?;
                }
                Ok(())
            }

            /// The customer's hold running at `now`, read in a transaction or from the pool.
            async fn hold_in<'e, E>(exec: E, tenant: TenantId, customer: CustomerId, now: Timestamp) -> StoreResult<Option<RecoveryHold>>
            where
                E: sqlx::Executor<'e, Database = Db>,
            {
                let row: Option<(i64, i64)> = sqlx::query_as(
                    "SELECT until, failures FROM recovery_holds WHERE tenant_id = $1 AND customer_id = $2 AND until > $3",
                )
                .bind(tenant.to_string())
                .bind(customer.to_string())
                .bind(micros(now))
                .fetch_optional(exec)
                .await
                .map_err(Self::map_err)?;
                Ok(row.map(|(until, failures)| RecoveryHold {
                    until: $crate::regain_store::codec::timestamp(until),
                    failures: u32::try_from(failures).unwrap_or(u32::MAX),
                }))
            }

            /// The customer's counted failures since `since`, in a transaction or from the pool.
            async fn failures_in<'e, E>(exec: E, tenant: TenantId, customer: CustomerId, since: Timestamp) -> StoreResult<u32>
            where
                E: sqlx::Executor<'e, Database = Db>,
            {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM verification_attempts WHERE tenant_id = $1 AND customer_id = $2 AND counted = $3 AND at > $4",
                )
                .bind(tenant.to_string())
                .bind(customer.to_string())
                .bind(true)
                .bind(micros(since))
                .fetch_one(exec)
                .await
                .map_err(Self::map_err)?;
                Ok(u32::try_from(n).unwrap_or(u32::MAX))
            }

            /// Writes an attempt; a counted failure that brings the customer to `limit` starts a
            /// hold, with its own timeline and audit entries.
            #[allow(clippy::too_many_arguments)]
            async fn insert_attempt(
                tx: &mut Tx,
                keyring: &Keyring,
                case: &Case,
                customer: CustomerId,
                attempt: &NewAttempt,
                ctx: &AttemptContext,
                limit: &FailureLimit,
            ) -> StoreResult<AttemptRecorded> {
                let tenant = case.tenant_id;
                sqlx::query(
                    "INSERT INTO verification_attempts (id, tenant_id, case_id, customer_id, method, passed, counted, \
                     detail, destination, destination_since, ip, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind($crate::uuid::Uuid::now_v7().to_string())
                .bind(tenant.to_string())
                .bind(case.id.to_string())
                .bind(customer.to_string())
                .bind(&attempt.method)
                .bind(attempt.passed)
                .bind(attempt.counted && !attempt.passed)
                .bind(attempt.detail.as_deref())
                .bind(attempt.destination.as_deref())
                .bind(attempt.destination_since.map(micros))
                .bind(ctx.ip.as_deref())
                .bind(micros(ctx.at))
                .execute(&mut **tx)
                .await
                .map_err(Self::map_err)?;
                if !(attempt.counted && !attempt.passed) {
                    // Nothing to count: the caller already found no hold under the customer's lock.
                    return Ok(AttemptRecorded { failures: 0, held_until: None, refused: false, not_spent: false });
                }
                let failures = Self::failures_in(&mut **tx, tenant, customer, ctx.at - limit.window).await?;
                let mut held_until = Self::hold_in(&mut **tx, tenant, customer, ctx.at).await?.map(|h| h.until);
                if attempt.counted && !attempt.passed && failures >= limit.max && held_until.is_none() {
                    let until = ctx.at + limit.cooldown;
                    sqlx::query(
                        "INSERT INTO recovery_holds (tenant_id, customer_id, until, failures, created_at) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, customer_id) \
                         DO UPDATE SET until = excluded.until, failures = excluded.failures, created_at = excluded.created_at",
                    )
                    .bind(tenant.to_string())
                    .bind(customer.to_string())
                    .bind(micros(until))
                    .bind(i64::from(failures))
                    .bind(micros(ctx.at))
                    .execute(&mut **tx)
                    .await
                    .map_err(Self::map_err)?;
                    let event = CaseEvent::RecoveryHeld { until, failures };
                    Self::append_at(tx, keyring, case, ctx.at, &[event], &Actor::System).await?;
                    held_until = Some(until);
                }
                Ok(AttemptRecorded { failures, held_until, refused: false, not_spent: false })
            }

            async fn v_assurance_policy(&self, tenant: TenantId, version: Option<i64>) -> StoreResult<Option<StoredPolicy>> {
                let row: Option<$crate::verification::PolicyRow> = match version {
                    Some(v) => sqlx::query_as(
                        "SELECT tenant_id, version, document, created_by, created_at FROM assurance_policies \
                         WHERE tenant_id = $1 AND version = $2",
                    )
                    .bind(tenant.to_string())
                    .bind(v)
                    .fetch_optional(self.read_pool())
                    .await,
                    None => sqlx::query_as(
                        "SELECT tenant_id, version, document, created_by, created_at FROM assurance_policies \
                         WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1",
                    )
                    .bind(tenant.to_string())
                    .fetch_optional(self.read_pool())
                    .await,
                }
                .map_err(Self::map_err)?;
                row.map(Self::policy_from_row).transpose()
            }

            fn policy_from_row(r: $crate::verification::PolicyRow) -> StoreResult<StoredPolicy> {
                Ok(StoredPolicy {
                    tenant_id: $crate::regain_store::codec::parse_column("assurance_policies.tenant_id", &r.tenant_id, TenantId::parse)?,
                    version: r.version,
                    document: r.document,
                    created_by: $crate::regain_store::codec::actor_from_text(&r.created_by)?,
                    created_at: $crate::regain_store::codec::timestamp(r.created_at),
                })
            }

            async fn v_assurance_policy_versions(&self, tenant: TenantId) -> StoreResult<Vec<StoredPolicy>> {
                let rows: Vec<$crate::verification::PolicyRow> = sqlx::query_as(
                    "SELECT tenant_id, version, document, created_by, created_at FROM assurance_policies \
                     WHERE tenant_id = $1 ORDER BY version DESC",
                )
                .bind(tenant.to_string())
                .fetch_all(self.read_pool())
                .await
                .map_err(Self::map_err)?;
                rows.into_iter().map(Self::policy_from_row).collect()
            }

            async fn v_save_assurance_policy(
                &self,
                tenant: TenantId,
                document: &str,
                base_version: Option<i64>,
                actor: &Actor,
                at: Timestamp,
            ) -> StoreResult<StoredPolicy> {
                let mut tx = self.write_tx().await?;
                let latest: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM assurance_policies WHERE tenant_id = $1")
                    .bind(tenant.to_string())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(Self::map_err)?;
                if latest != base_version {
                    return Err(StoreError::Conflict);
                }
                let version = latest.unwrap_or(0) + 1;
                // Two editors saving at once: the second insert of this version fails as a
                // duplicate, which is the same conflict.
                sqlx::query(
                    "INSERT INTO assurance_policies (tenant_id, version, document, created_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(tenant.to_string())
                .bind(version)
                .bind(document)
                .bind(actor_to_text(actor))
                .bind(micros(at))
                .execute(&mut *tx)
                .await
                .map_err(|e| match Self::map_err(e) {
                    StoreError::Duplicate { .. } => StoreError::Conflict,
                    other => other,
                })?;
                let document_value: $crate::serde_json::Value =
                    $crate::serde_json::from_str(document).unwrap_or($crate::serde_json::Value::Null);
                let audit = AuditRecord::new(Some(tenant), *actor, "policy.updated", at)
                    .data($crate::serde_json::json!({"version": version, "policy": document_value}));
                Self::insert_audit(&mut tx, &audit).await?;
                tx.commit().await.map_err(Self::map_err)?;
                Ok(StoredPolicy { tenant_id: tenant, version, document: document.to_owned(), created_by: *actor, created_at: at })
            }

            async fn v_issue_challenge(
                &self,
                case: &Case,
                challenge: &NewChallenge,
                secret: &str,
                message: &NewMessage,
                events: &[CaseEvent],
                actor: &Actor,
            ) -> StoreResult<()> {
                let keyring = self.keys.get()?;
                let hash = match challenge.delivery {
                    Delivery::Code => $crate::verification::code_hash(&keyring, challenge.tenant_id, &challenge.id, secret),
                    Delivery::Link => $crate::verification::link_hash(&keyring, secret),
                };
                let mut tx = self.write_tx().await?;
                Self::lock_case(&mut tx, case).await?;
                sqlx::query(
                    "UPDATE verification_challenges SET state = 'superseded', closed_at = $2 \
                     WHERE case_id = $1 AND state = 'pending'",
                )
                .bind(case.id.to_string())
                .bind(micros(challenge.created_at))
                .execute(&mut *tx)
                .await
                .map_err(Self::map_err)?;
                sqlx::query(&format!(
                    "INSERT INTO verification_challenges ({}, delivery, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, 'pending', $10, $11, $12)",
                    $crate::verification::CHALLENGE_COLUMNS
                ))
                .bind(&challenge.id)
                .bind(challenge.tenant_id.to_string())
                .bind(challenge.case_id.to_string())
                .bind(challenge.customer_id.to_string())
                .bind(challenge.method.as_str())
                .bind(&challenge.destination)
                .bind(micros(challenge.destination_since))
                .bind(&hash)
                .bind(i64::from(challenge.attempts_max))
                .bind(micros(challenge.expires_at))
                .bind(challenge.delivery.as_str())
                .bind(micros(challenge.created_at))
                .execute(&mut *tx)
                .await
                .map_err(Self::map_err)?;
                Self::insert_message(&mut tx, &keyring, message).await?;
                Self::append_at(&mut tx, &keyring, case, challenge.created_at, events, actor).await?;
                tx.commit().await.map_err(Self::map_err)
            }

            async fn v_redeem_code(
                &self,
                case: &Case,
                code: &str,
                ctx: &AttemptContext,
                limit: &FailureLimit,
            ) -> StoreResult<Redeemed> {
                let Some(customer) = case.customer_id else {
                    return Ok(Redeemed::NonePending);
                };
                let keyring = self.keys.get()?;
                let mut tx = self.write_tx().await?;
                Self::lock_case(&mut tx, case).await?;
                Self::lock_customer(&mut tx, case.tenant_id, customer).await?;
                if let Some(hold) = Self::hold_in(&mut *tx, case.tenant_id, customer, ctx.at).await? {
                    return Ok(Redeemed::Held { until: hold.until });
                }
                // Every check is an attempt on the code, right or wrong: the increment takes the
                // row, so concurrent checks of one code run one after another (T3).
                let row: Option<$crate::verification::ChallengeRow> = sqlx::query_as(&format!(
                    "UPDATE verification_challenges SET attempts = attempts + 1 \
                     WHERE case_id = $1 AND state = 'pending' AND delivery = 'code' RETURNING {}",
                    $crate::verification::CHALLENGE_COLUMNS
                ))
                .bind(case.id.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(Self::map_err)?;
                let Some(row) = row else {
                    let last: Option<String> = sqlx::query_scalar(
                        "SELECT state FROM verification_challenges WHERE case_id = $1 AND delivery = 'code' \
                         ORDER BY created_at DESC, id DESC LIMIT 1",
                    )
                    .bind(case.id.to_string())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(Self::map_err)?;
                    return Ok(match last.as_deref() {
                        Some("used") => Redeemed::Used,
                        Some("expired") => Redeemed::Expired,
                        _ => Redeemed::NonePending,
                    });
                };
                let method = $crate::regain_store::codec::parse_column(
                    "verification_challenges.method",
                    &row.method,
                    $crate::regain_core::policy::Method::parse,
                )?;
                let close = |state: &'static str| {
                    sqlx::query("UPDATE verification_challenges SET state = $2, closed_at = $3 WHERE id = $1")
                        .bind(row.id.clone())
                        .bind(state)
                        .bind(micros(ctx.at))
                };
                if ctx.at >= $crate::regain_store::codec::timestamp(row.expires_at) {
                    close("expired").execute(&mut *tx).await.map_err(Self::map_err)?;
                    let event = CaseEvent::VerificationChecked {
                        method,
                        passed: false,
                        detail: Some("expired".into()),
                        destination: Some(row.destination.clone()),
                    };
                    Self::append_at(&mut tx, &keyring, case, ctx.at, &[event], &ctx.actor).await?;
                    tx.commit().await.map_err(Self::map_err)?;
                    return Ok(Redeemed::Expired);
                }
                let presented = $crate::verification::code_hash(&keyring, case.tenant_id, &row.id, code);
                let right = $crate::verification::hashes_equal(&presented, &row.secret_hash)
                    && row.customer_id == customer.to_string()
                    && row.attempts <= row.attempts_max;
                let exhausted = !right && row.attempts >= row.attempts_max;
                if right {
                    close("used").execute(&mut *tx).await.map_err(Self::map_err)?;
                } else if exhausted {
                    close("exhausted").execute(&mut *tx).await.map_err(Self::map_err)?;
                }
                let detail = if right { None } else if exhausted { Some("attempts_exhausted") } else { Some("wrong_code") };
                let attempt = NewAttempt {
                    method: method.as_str().to_owned(),
                    passed: right,
                    counted: !right,
                    detail: detail.map(str::to_owned),
                    destination: Some(row.destination.clone()),
                    destination_since: Some($crate::regain_store::codec::timestamp(row.destination_since)),
                };
                let event = CaseEvent::VerificationChecked {
                    method,
                    passed: right,
                    detail: attempt.detail.clone(),
                    destination: Some(row.destination.clone()),
                };
                Self::append_at(&mut tx, &keyring, case, ctx.at, &[event], &ctx.actor).await?;
                let recorded = Self::insert_attempt(&mut tx, &keyring, case, customer, &attempt, ctx, limit).await?;
                tx.commit().await.map_err(Self::map_err)?;
                Ok(if right {
                    Redeemed::Passed { method, destination: row.destination }
                } else if exhausted {
                    Redeemed::Exhausted { recorded }
                } else {
                    let left = row.attempts_max.saturating_sub(row.attempts);
                    Redeemed::Wrong { attempts_left: u32::try_from(left).unwrap_or(0), recorded }
                })
            }

            fn link_from_row(row: $crate::verification::ChallengeRow) -> StoreResult<LinkChallenge> {
                use $crate::regain_store::codec::{parse_column, timestamp};
                Ok(LinkChallenge {
                    challenge_id: row.id,
                    tenant_id: parse_column("verification_challenges.tenant_id", &row.tenant_id, TenantId::parse)?,
                    case_id: parse_column("verification_challenges.case_id", &row.case_id, CaseId::parse)?,
                    customer_id: parse_column("verification_challenges.customer_id", &row.customer_id, CustomerId::parse)?,
                    method: parse_column("verification_challenges.method", &row.method, $crate::regain_core::policy::Method::parse)?,
                    destination: row.destination,
                    state: row.state,
                    expires_at: timestamp(row.expires_at),
                })
            }

            async fn v_link_challenge(&self, token: &str) -> StoreResult<Option<LinkChallenge>> {
                let keyring = self.keys.get()?;
                let hash = $crate::verification::link_hash(&keyring, token);
                let row: Option<$crate::verification::ChallengeRow> = sqlx::query_as(&format!(
                    "SELECT {} FROM verification_challenges WHERE secret_hash = $1 AND delivery = 'link'",
                    $crate::verification::CHALLENGE_COLUMNS
                ))
                .bind(&hash)
                .fetch_optional(self.read_pool())
                .await
                .map_err(Self::map_err)?;
                row.map(Self::link_from_row).transpose()
            }

            async fn v_answer_link(
                &self,
                case: &Case,
                token: &str,
                approve: bool,
                ctx: &AttemptContext,
            ) -> StoreResult<LinkAnswer> {
                let keyring = self.keys.get()?;
                let hash = $crate::verification::link_hash(&keyring, token);
                let mut tx = self.write_tx().await?;
                Self::lock_case(&mut tx, case).await?;
                if approve {
                    if case.state != CaseState::Verifying {
                        return Ok(LinkAnswer::Closed);
                    }
                    if let Some(customer) = case.customer_id {
                        Self::lock_customer(&mut tx, case.tenant_id, customer).await?;
                        if let Some(hold) = Self::hold_in(&mut *tx, case.tenant_id, customer, ctx.at).await? {
                            return Ok(LinkAnswer::Held { until: hold.until });
                        }
                    }
                }
                let row: Option<$crate::verification::ChallengeRow> = sqlx::query_as(&format!(
                    "UPDATE verification_challenges SET state = $2, closed_at = $3 \
                     WHERE secret_hash = $1 AND delivery = 'link' AND state = 'pending' AND expires_at > $3 \
                     AND case_id = $4 RETURNING {}",
                    $crate::verification::CHALLENGE_COLUMNS
                ))
                .bind(&hash)
                .bind(if approve { "used" } else { "repudiated" })
                .bind(micros(ctx.at))
                .bind(case.id.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(Self::map_err)?;
                let Some(row) = row else {
                    return Ok(LinkAnswer::Closed);
                };
                let link = Self::link_from_row(row)?;
                let event = CaseEvent::VerificationChecked {
                    method: link.method,
                    passed: approve,
                    detail: (!approve).then(|| "repudiated".to_owned()),
                    destination: Some(link.destination.clone()),
                };
                Self::append_at(&mut tx, &keyring, case, ctx.at, &[event], &ctx.actor).await?;
                let attempt = NewAttempt {
                    method: link.method.as_str().to_owned(),
                    passed: approve,
                    // "This wasn't me" is not a guess: it stops the case, it does not count.
                    counted: false,
                    detail: (!approve).then(|| "repudiated".to_owned()),
                    destination: Some(link.destination.clone()),
                    destination_since: None,
                };
                let since: Option<i64> = sqlx::query_scalar("SELECT destination_since FROM verification_challenges WHERE id = $1")
                    .bind(&link.challenge_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(Self::map_err)?;
                let attempt = NewAttempt { destination_since: since.map($crate::regain_store::codec::timestamp), ..attempt };
                let never = FailureLimit { max: u32::MAX, window: $crate::regain_core::chrono::Duration::zero(), cooldown: $crate::regain_core::chrono::Duration::zero() };
                Self::insert_attempt(&mut tx, &keyring, case, link.customer_id, &attempt, ctx, &never).await?;
                tx.commit().await.map_err(Self::map_err)?;
                Ok(LinkAnswer::Answered(link))
            }

            #[allow(clippy::too_many_arguments)]
            async fn v_record_attempt(
                &self,
                case: &Case,
                customer: Option<CustomerId>,
                attempt: &NewAttempt,
                ctx: &AttemptContext,
                events: &[CaseEvent],
                messages: &[NewMessage],
                limit: &FailureLimit,
                consume: Option<&Consume>,
            ) -> StoreResult<AttemptRecorded> {
                let keyring = self.keys.get()?;
                let mut tx = self.write_tx().await?;
                Self::lock_case(&mut tx, case).await?;
                if let Some(customer) = customer {
                    // Checked under the customer's lock: past the stop, even the right answer
                    // fails, and nothing is recorded (nor spent).
                    Self::lock_customer(&mut tx, case.tenant_id, customer).await?;
                    if let Some(hold) = Self::hold_in(&mut *tx, case.tenant_id, customer, ctx.at).await? {
                        return Ok(AttemptRecorded { failures: hold.failures, held_until: Some(hold.until), refused: true, not_spent: false });
                    }
                    let spent = match consume {
                        None => true,
                        Some(Consume::RecoveryCode(code)) => {
                            Self::spend_recovery_code(&mut tx, &keyring, case.tenant_id, customer, code, ctx.at).await?
                        }
                        Some(Consume::TotpStep(step)) => Self::spend_totp_step(&mut tx, case.tenant_id, customer, *step).await?,
                    };
                    if !spent {
                        return Ok(AttemptRecorded { failures: 0, held_until: None, refused: false, not_spent: true });
                    }
                }
                Self::append_at(&mut tx, &keyring, case, ctx.at, events, &ctx.actor).await?;
                for m in messages {
                    Self::insert_message(&mut tx, &keyring, m).await?;
                }
                let recorded = match customer {
                    Some(customer) => Self::insert_attempt(&mut tx, &keyring, case, customer, attempt, ctx, limit).await?,
                    None => AttemptRecorded { failures: 0, held_until: None, refused: false, not_spent: false },
                };
                tx.commit().await.map_err(Self::map_err)?;
                Ok(recorded)
            }

            async fn v_verification_attempts(&self, tenant: TenantId, case: CaseId) -> StoreResult<Vec<VerificationAttempt>> {
                use $crate::regain_store::codec::{parse_column, timestamp};
                let rows: Vec<$crate::verification::AttemptRow> = sqlx::query_as(
                    "SELECT case_id, customer_id, method, passed, counted, detail, destination, destination_since, at \
                     FROM verification_attempts WHERE tenant_id = $1 AND case_id = $2 ORDER BY at, id",
                )
                .bind(tenant.to_string())
                .bind(case.to_string())
                .fetch_all(self.read_pool())
                .await
                .map_err(Self::map_err)?;
                rows.into_iter()
                    .map(|r| {
                        Ok(VerificationAttempt {
                            case_id: r.case_id.as_deref().map(|c| parse_column("verification_attempts.case_id", c, CaseId::parse)).transpose()?,
                            customer_id: parse_column("verification_attempts.customer_id", &r.customer_id, CustomerId::parse)?,
                            method: r.method,
                            passed: r.passed,
                            counted: r.counted,
                            detail: r.detail,
                            destination: r.destination,
                            destination_since: r.destination_since.map(timestamp),
                            at: timestamp(r.at),
                        })
                    })
                    .collect()
            }

            async fn v_recovery_hold(&self, tenant: TenantId, customer: CustomerId, now: Timestamp) -> StoreResult<Option<RecoveryHold>> {
                Self::hold_in(self.read_pool(), tenant, customer, now).await
            }

            async fn v_failures_since(&self, tenant: TenantId, customer: CustomerId, since: Timestamp) -> StoreResult<u32> {
                Self::failures_in(self.read_pool(), tenant, customer, since).await
            }

            async fn customer_exists(tx: &mut Tx, tenant: TenantId, customer: CustomerId) -> StoreResult<()> {
                let found: Option<String> = sqlx::query_scalar("SELECT id FROM customers WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.to_string())
                    .bind(customer.to_string())
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(Self::map_err)?;
                found.map(|_| ()).ok_or(StoreError::NotFound)
            }

            async fn v_begin_totp_enrollment(&self, tenant: TenantId, customer: CustomerId, secret: &[u8], audit: &AuditRecord) -> StoreResult<()> {
                let keyring = self.keys.get()?;
                let mut tx = self.write_tx().await?;
                Self::customer_exists(&mut tx, tenant, customer).await?;
                let confirmed: Option<Option<i64>> =
                    sqlx::query_scalar("SELECT confirmed_at FROM customer_totp WHERE customer_id = $1")
                        .bind(customer.to_string())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(Self::map_err)?;
                if matches!(confirmed, Some(Some(_))) {
                    return Err(StoreError::Precondition(
                        "an authenticator app is already enrolled; remove it before enrolling another".into(),
                    ));
                }
                let key = Self::customer_key_in(&mut tx, &keyring, customer).await?;
                let sealed = $crate::verification::seal_totp(&key, customer, secret);
                sqlx::query(
                    "INSERT INTO customer_totp (customer_id, tenant_id, secret_sealed, confirmed_at, last_step, created_at) \
                     VALUES ($1, $2, $3, NULL, NULL, $4) ON CONFLICT (customer_id) \
                     DO UPDATE SET secret_sealed = excluded.secret_sealed, created_at = excluded.created_at, last_step = NULL",
                )
                .bind(customer.to_string())
                .bind(tenant.to_string())
                .bind(&sealed)
                .bind(micros(audit.at))
                .execute(&mut *tx)
                .await
                .map_err(Self::map_err)?;
                Self::insert_audit(&mut tx, &audit.clone().customer(customer)).await?;
                tx.commit().await.map_err(Self::map_err)
            }

            async fn v_customer_totp(&self, tenant: TenantId, customer: CustomerId) -> StoreResult<Option<CustomerTotp>> {
                let keyring = self.keys.get()?;
                let row: Option<(String, Option<i64>, Option<Vec<u8>>)> = sqlx::query_as(
                    "SELECT secret_sealed, confirmed_at, (SELECT wrapped FROM data_keys WHERE subject = customer_totp.customer_id) \
                     FROM customer_totp WHERE tenant_id = $1 AND customer_id = $2",
                )
                .bind(tenant.to_string())
                .bind(customer.to_string())
                .fetch_optional(self.read_pool())
                .await
                .map_err(Self::map_err)?;
                let Some((sealed, confirmed_at, wrapped)) = row else { return Ok(None) };
                let wrapped = wrapped.ok_or(StoreError::NotFound)?;
                let key = keyring.data_key(&customer.to_string(), &wrapped).map_err(|_| $crate::sealing::undecryptable("data_keys"))?;
                Ok(Some(CustomerTotp {
                    secret: $crate::verification::open_totp(&key, customer, &sealed)?,
                    confirmed: confirmed_at.is_some(),
                    confirmed_at: confirmed_at.map($crate::regain_store::codec::timestamp),
                }))
            }

            async fn v_claim_customer_totp_step(
                &self,
                tenant: TenantId,
                customer: CustomerId,
                step: i64,
                audit: Option<&AuditRecord>,
            ) -> StoreResult<bool> {
                let mut tx = self.write_tx().await?;
                if !Self::spend_totp_step(&mut tx, tenant, customer, step).await? {
                    return Ok(false);
                }
                if let Some(audit) = audit {
                    let confirmed = sqlx::query(
                        "UPDATE customer_totp SET confirmed_at = $3 WHERE tenant_id = $1 AND customer_id = $2 AND confirmed_at IS NULL",
                    )
                    .bind(tenant.to_string())
                    .bind(customer.to_string())
                    .bind(micros(audit.at))
                    .execute(&mut *tx)
                    .await
                    .map_err(Self::map_err)?;
                    if confirmed.rows_affected() > 0 {
                        sqlx::query("UPDATE customers SET totp_enrolled = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2")
                            .bind(tenant.to_string())
                            .bind(customer.to_string())
                            .bind(true)
                            .bind(micros(audit.at))
                            .execute(&mut *tx)
                            .await
                            .map_err(Self::map_err)?;
                        Self::insert_audit(&mut tx, &audit.clone().customer(customer)).await?;
                    }
                }
                tx.commit().await.map_err(Self::map_err)?;
                Ok(true)
            }

            async fn v_replace_recovery_codes(
                &self,
                tenant: TenantId,
                customer: CustomerId,
                codes: &[String],
                unless_issued_after: Option<Timestamp>,
                audit: &AuditRecord,
            ) -> StoreResult<()> {
                let keyring = self.keys.get()?;
                let mut tx = self.write_tx().await?;
                Self::customer_exists(&mut tx, tenant, customer).await?;
                if let Some(after) = unless_issued_after {
                    // The customer's row first (a no-op update takes its lock on PostgreSQL;
                    // SQLite has one writer), then the codes as committed by whoever held it.
                    Self::lock_customer(&mut tx, tenant, customer).await?;
                    let newer: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM customer_recovery_codes WHERE customer_id = $1 AND created_at > $2",
                    )
                    .bind(customer.to_string())
                    .bind(micros(after))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(Self::map_err)?;
                    if newer > 0 {
                        return Err(StoreError::Precondition("a set of recovery codes was issued since".into()));
                    }
                }
                sqlx::query("DELETE FROM customer_recovery_codes WHERE customer_id = $1")
                    .bind(customer.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(Self::map_err)?;
                for code in codes {
                    sqlx::query(
                        "INSERT INTO customer_recovery_codes (customer_id, tenant_id, code_hash, created_at) VALUES ($1, $2, $3, $4)",
                    )
                    .bind(customer.to_string())
                    .bind(tenant.to_string())
                    .bind($crate::verification::recovery_code_hash(&keyring, tenant, customer, code))
                    .bind(micros(audit.at))
                    .execute(&mut *tx)
                    .await
                    .map_err(Self::map_err)?;
                }
                sqlx::query("UPDATE customers SET recovery_codes_remaining = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.to_string())
                    .bind(customer.to_string())
                    .bind(i64::try_from(codes.len()).unwrap_or(i64::MAX))
                    .bind(micros(audit.at))
                    .execute(&mut *tx)
                    .await
                    .map_err(Self::map_err)?;
                let audit = audit.clone().customer(customer).data($crate::serde_json::json!({"codes": codes.len()}));
                Self::insert_audit(&mut tx, &audit).await?;
                tx.commit().await.map_err(Self::map_err)
            }

            /// Spends a recovery code in the caller's transaction: `false` when it is not an
            /// unused code (any more).
            async fn spend_recovery_code(tx: &mut Tx, keyring: &Keyring, tenant: TenantId, customer: CustomerId, code: &str, at: Timestamp) -> StoreResult<bool> {
                let hash = $crate::verification::recovery_code_hash(keyring, tenant, customer, code);
                let done = sqlx::query(
                    "UPDATE customer_recovery_codes SET used_at = $4 \
                     WHERE tenant_id = $1 AND customer_id = $2 AND code_hash = $3 AND used_at IS NULL",
                )
                .bind(tenant.to_string())
                .bind(customer.to_string())
                .bind(&hash)
                .bind(micros(at))
                .execute(&mut **tx)
                .await
                .map_err(Self::map_err)?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                sqlx::query(
                    "UPDATE customers SET recovery_codes_remaining = \
                     (SELECT COUNT(*) FROM customer_recovery_codes WHERE customer_id = $2 AND used_at IS NULL), updated_at = $3 \
                     WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.to_string())
                .bind(customer.to_string())
                .bind(micros(at))
                .execute(&mut **tx)
                .await
                .map_err(Self::map_err)?;
                Ok(true)
            }

            /// Claims a TOTP step in the caller's transaction: `false` when it (or a later one)
            /// was used.
            async fn spend_totp_step(tx: &mut Tx, tenant: TenantId, customer: CustomerId, step: i64) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE customer_totp SET last_step = $3 \
                     WHERE tenant_id = $1 AND customer_id = $2 AND (last_step IS NULL OR last_step < $3)",
                )
                .bind(tenant.to_string())
                .bind(customer.to_string())
                .bind(step)
                .execute(&mut **tx)
                .await
                .map_err(Self::map_err)?;
                Ok(done.rows_affected() > 0)
            }

            async fn v_set_knowledge_answer(&self, tenant: TenantId, customer: CustomerId, question: &str, answer_hash: &str, audit: &AuditRecord) -> StoreResult<()> {
                let mut tx = self.write_tx().await?;
                Self::customer_exists(&mut tx, tenant, customer).await?;
                sqlx::query(
                    "INSERT INTO customer_knowledge (customer_id, tenant_id, question, answer_hash, updated_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (customer_id, question) \
                     DO UPDATE SET answer_hash = excluded.answer_hash, updated_at = excluded.updated_at",
                )
                .bind(customer.to_string())
                .bind(tenant.to_string())
                .bind(question)
                .bind(answer_hash)
                .bind(micros(audit.at))
                .execute(&mut *tx)
                .await
                .map_err(Self::map_err)?;
                let audit = audit.clone().customer(customer).data($crate::serde_json::json!({"question": question}));
                Self::insert_audit(&mut tx, &audit).await?;
                tx.commit().await.map_err(Self::map_err)
            }

            async fn v_knowledge_answers(&self, tenant: TenantId, customer: CustomerId) -> StoreResult<Vec<(String, String)>> {
                sqlx::query_as(
                    "SELECT question, answer_hash FROM customer_knowledge WHERE tenant_id = $1 AND customer_id = $2 ORDER BY question",
                )
                .bind(tenant.to_string())
                .bind(customer.to_string())
                .fetch_all(self.read_pool())
                .await
                .map_err(Self::map_err)
            }

            async fn v_message_templates(&self, tenant: TenantId) -> StoreResult<Vec<StoredTemplate>> {
                let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
                    "SELECT name, channel, subject, body, updated_at FROM message_templates WHERE tenant_id = $1 ORDER BY name, channel",
                )
                .bind(tenant.to_string())
                .fetch_all(self.read_pool())
                .await
                .map_err(Self::map_err)?;
                Ok(rows
                    .into_iter()
                    .map(|(name, channel, subject, body, at)| StoredTemplate {
                        name,
                        channel,
                        subject,
                        body,
                        updated_at: $crate::regain_store::codec::timestamp(at),
                    })
                    .collect())
            }

            async fn v_set_message_template(&self, tenant: TenantId, t: &StoredTemplate, audit: &AuditRecord) -> StoreResult<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO message_templates (tenant_id, name, channel, subject, body, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, name, channel) \
                     DO UPDATE SET subject = excluded.subject, body = excluded.body, updated_at = excluded.updated_at",
                )
                .bind(tenant.to_string())
                .bind(&t.name)
                .bind(&t.channel)
                .bind(&t.subject)
                .bind(&t.body)
                .bind(micros(t.updated_at))
                .execute(&mut *tx)
                .await
                .map_err(Self::map_err)?;
                let audit = audit.clone().data($crate::serde_json::json!({
                    "template": t.name, "channel": t.channel, "subject": t.subject, "body": t.body,
                }));
                Self::insert_audit(&mut tx, &audit).await?;
                tx.commit().await.map_err(Self::map_err)
            }

            async fn v_delete_message_template(&self, tenant: TenantId, name: &str, channel: &str, audit: &AuditRecord) -> StoreResult<bool> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query("DELETE FROM message_templates WHERE tenant_id = $1 AND name = $2 AND channel = $3")
                    .bind(tenant.to_string())
                    .bind(name)
                    .bind(channel)
                    .execute(&mut *tx)
                    .await
                    .map_err(Self::map_err)?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                let audit = audit.clone().data($crate::serde_json::json!({"template": name, "channel": channel}));
                Self::insert_audit(&mut tx, &audit).await?;
                tx.commit().await.map_err(Self::map_err)?;
                Ok(true)
            }

            async fn v_enqueue_message(&self, message: &NewMessage) -> StoreResult<()> {
                let keyring = self.keys.get()?;
                let mut tx = self.write_tx().await?;
                Self::insert_message(&mut tx, &keyring, message).await?;
                tx.commit().await.map_err(Self::map_err)
            }

            async fn v_claim_messages(&self, now: Timestamp, lease_until: Timestamp, limit: u32) -> StoreResult<Vec<OutboxMessage>> {
                use $crate::regain_store::codec::parse_column;
                let keyring = self.keys.get()?;
                let mut tx = self.write_tx().await?;
                // The lease moves the message out of reach of other workers until it ends; a
                // worker that dies mid-send leaves it to be sent again then (at least once; the
                // message id is the transport's idempotency key).
                // PostgreSQL: concurrent claimers skip rows another one is taking instead of
                // waiting on them (which deadlocked two claimers locking in different orders).
                let rows: Vec<$crate::verification::OutboxRow> = sqlx::query_as(if $at_write {
                    $crate::verification::OUTBOX_CLAIM_ONE_WRITER
                } else {
                    $crate::verification::OUTBOX_CLAIM_SKIP_LOCKED
                })
                .bind(micros(now))
                .bind(micros(lease_until))
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await
                .map_err(Self::map_err)?;
                tx.commit().await.map_err(Self::map_err)?;
                let mut messages = Vec::with_capacity(rows.len());
                let mut dead = Vec::new();
                for row in rows {
                    let customer = parse_column("outbox.customer_id", &row.customer_id, CustomerId::parse)?;
                    let (Some(sealed), Some(wrapped)) = (row.sealed.as_deref(), row.wrapped_key.as_deref()) else {
                        // Its customer was erased meanwhile: nothing to send, nobody to send it to.
                        dead.push((row.id, DeliveryResult::Dead { error: "the customer's data was erased".into() }));
                        continue;
                    };
                    // A message that does not open is given up, not retried forever, and does
                    // not hold up the others.
                    let opened = keyring
                        .data_key(&customer.to_string(), wrapped)
                        .map_err(|_| $crate::sealing::undecryptable("data_keys"))
                        .and_then(|key| $crate::verification::open_message(&key, &row.id, sealed));
                    let (to, subject, body) = match opened {
                        Ok(opened) => opened,
                        Err(e) => {
                            dead.push((row.id, DeliveryResult::Dead { error: e.to_string() }));
                            continue;
                        }
                    };
                    messages.push(OutboxMessage {
                        id: row.id,
                        tenant_id: parse_column("outbox.tenant_id", &row.tenant_id, TenantId::parse)?,
                        channel: row.channel,
                        to,
                        subject,
                        body,
                        attempts: u32::try_from(row.attempts).unwrap_or(0),
                    });
                }
                self.v_finish_messages(&dead, now).await?;
                Ok(messages)
            }

            async fn v_finish_messages(&self, results: &[(String, DeliveryResult)], now: Timestamp) -> StoreResult<()> {
                if results.is_empty() {
                    return Ok(());
                }
                let mut tx = self.write_tx().await?;
                // The sent ones, usually all of them, in one statement.
                let sent: Vec<&str> =
                    results.iter().filter(|(_, r)| matches!(r, DeliveryResult::Sent)).map(|(id, _)| id.as_str()).collect();
                for chunk in sent.chunks($crate::ROWS_PER_INSERT) {
                    let ids = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect::<Vec<_>>().join(", ");
                    let sql = format!(
                        "UPDATE outbox SET state = 'sent', sealed = NULL, attempts = attempts + 1, sent_at = $1, last_error = NULL \
                         WHERE state = 'pending' AND id IN ({ids})"
                    );
                    let mut query = sqlx::query(&sql).bind(micros(now));
                    for id in chunk {
                        query = query.bind(*id);
                    }
                    query.execute(&mut *tx).await.map_err(Self::map_err)?;
                }
                // Those to try again, and those given up, in one statement each: a provider that
                // is down fails the whole round, which then costs two writes, not one a message.
                let retry: Vec<(&str, i64, &str)> = results
                    .iter()
                    .filter_map(|(id, r)| match r {
                        DeliveryResult::Retry { at, error } => Some((id.as_str(), micros(*at), error.as_str())),
                        _ => None,
                    })
                    .collect();
                for chunk in retry.chunks($crate::ROWS_PER_INSERT) {
                    let rows = (0..chunk.len())
                        .map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let sql = format!(
                        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = v.column2, last_error = v.column3 \
                         FROM (VALUES {rows}) AS v WHERE outbox.id = v.column1 AND outbox.state = 'pending'"
                    );
                    let mut query = sqlx::query(&sql);
                    for (id, at, error) in chunk {
                        query = query.bind(*id).bind(*at).bind(*error);
                    }
                    query.execute(&mut *tx).await.map_err(Self::map_err)?;
                }
                let dead: Vec<(&str, &str)> = results
                    .iter()
                    .filter_map(|(id, r)| match r {
                        DeliveryResult::Dead { error } => Some((id.as_str(), error.as_str())),
                        _ => None,
                    })
                    .collect();
                for chunk in dead.chunks($crate::ROWS_PER_INSERT) {
                    let rows =
                        (0..chunk.len()).map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2)).collect::<Vec<_>>().join(", ");
                    let sql = format!(
                        "UPDATE outbox SET state = 'dead', sealed = NULL, attempts = attempts + 1, last_error = v.column2 \
                         FROM (VALUES {rows}) AS v WHERE outbox.id = v.column1 AND outbox.state = 'pending'"
                    );
                    let mut query = sqlx::query(&sql);
                    for (id, error) in chunk {
                        query = query.bind(*id).bind(*error);
                    }
                    query.execute(&mut *tx).await.map_err(Self::map_err)?;
                }
                tx.commit().await.map_err(Self::map_err)
            }

            async fn v_outbox_for_case(&self, tenant: TenantId, case: CaseId) -> StoreResult<Vec<OutboxEntry>> {
                use $crate::regain_store::codec::{parse_column, timestamp};
                let rows: Vec<$crate::verification::OutboxLogRow> = sqlx::query_as(
                    "SELECT id, case_id, channel, destination, template, state, attempts, last_error, created_at, sent_at \
                     FROM outbox WHERE tenant_id = $1 AND case_id = $2 ORDER BY created_at, id",
                )
                .bind(tenant.to_string())
                .bind(case.to_string())
                .fetch_all(self.read_pool())
                .await
                .map_err(Self::map_err)?;
                rows.into_iter()
                    .map(|r| {
                        Ok(OutboxEntry {
                            id: r.id,
                            case_id: r.case_id.as_deref().map(|c| parse_column("outbox.case_id", c, CaseId::parse)).transpose()?,
                            channel: r.channel,
                            destination: r.destination,
                            template: r.template,
                            state: r.state,
                            attempts: u32::try_from(r.attempts).unwrap_or(0),
                            last_error: r.last_error,
                            created_at: timestamp(r.created_at),
                            sent_at: r.sent_at.map(timestamp),
                        })
                    })
                    .collect()
            }
        }
    };
}
