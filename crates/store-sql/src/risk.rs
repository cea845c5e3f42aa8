//! The risk engine's SQL (issue 5): recovery requests for velocity, and the history one
//! assessment reads — three statements on one connection (the case's request with its
//! per-IP/phone/email counts, the customer's counts and last changes, recent sign-ins).

use regain_core::CaseId;
use regain_crypto::DataKey;
use regain_store::{RequestContext, StoreError, StoreResult};
use serde_json::{json, Value};

use crate::sealing::undecryptable;

fn context_aad(case: CaseId) -> String {
    format!("risk_request:{case}")
}

pub fn seal_context(key: &DataKey, case: CaseId, context: &RequestContext) -> String {
    let value = json!({
        "ip": context.ip,
        "user_agent": context.user_agent,
        "device_id": context.device_id,
        "phone": context.phone,
        "email": context.email,
        "named_phone": context.named_phone,
        "named_email": context.named_email,
    });
    key.seal_text(&context_aad(case), &value.to_string())
}

pub fn open_context(key: &DataKey, case: CaseId, sealed: &str) -> StoreResult<RequestContext> {
    let text = key.open_text(&context_aad(case), sealed).map_err(|_| undecryptable("risk_requests.context"))?;
    let v: Value =
        serde_json::from_str(&text).map_err(|_| StoreError::Corrupt("risk_requests.context does not parse".into()))?;
    let field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    Ok(RequestContext {
        ip: field("ip"),
        user_agent: field("user_agent"),
        device_id: field("device_id"),
        phone: field("phone"),
        email: field("email"),
        named_phone: field("named_phone"),
        named_email: field("named_email"),
    })
}

/// The blind-index fields of a request's context.
pub mod fields {
    pub const IP: &str = "risk_ip";
    pub const DEVICE: &str = "risk_device";
    pub const PHONE: &str = "risk_phone";
    pub const EMAIL: &str = "risk_email";
}

/// Requests in the window that came from, or named, the same number or address as request `r`:
/// a request counts once whichever of its two columns matches. Written as two index lookups
/// (an `OR` across the columns would scan the tenant's requests).
fn either_column_count(column: &str, named: &str, since: &str) -> String {
    let a = format!("COALESCE(r.{column}, r.{named})");
    let b = format!("COALESCE(r.{named}, r.{column})");
    format!(
        "CASE WHEN r.{column} IS NULL AND r.{named} IS NULL THEN NULL ELSE \
         (SELECT COUNT(*) FROM risk_requests x WHERE x.tenant_id = r.tenant_id AND x.{column} IN ({a}, {b}) \
            AND x.at > {since} AND x.at <= $6) + \
         (SELECT COUNT(*) FROM risk_requests x WHERE x.tenant_id = r.tenant_id AND x.{named} IN ({a}, {b}) \
            AND (x.{column} IS NULL OR x.{column} NOT IN ({a}, {b})) AND x.at > {since} AND x.at <= $6) END"
    )
}

/// The request's row with its per-IP, per-phone and per-email counts: `$1` case, `$2` tenant,
/// `$3`..`$5` the IP, phone and email windows' starts, `$6` now.
pub static REQUEST_HISTORY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT r.context, k.wrapped AS wrapped_key, \
         CASE WHEN r.ip_bidx IS NULL THEN NULL ELSE (SELECT COUNT(*) FROM risk_requests x \
           WHERE x.tenant_id = r.tenant_id AND x.ip_bidx = r.ip_bidx AND x.at > $3 AND x.at <= $6) END AS requests_ip, \
         {} AS requests_phone, {} AS requests_email \
         FROM risk_requests r LEFT JOIN data_keys k ON k.subject = r.case_id \
         WHERE r.case_id = $1 AND r.tenant_id = $2",
        either_column_count("phone_bidx", "named_phone_bidx", "$4"),
        either_column_count("email_bidx", "named_email_bidx", "$5"),
    )
});

#[derive(sqlx::FromRow)]
pub struct RequestRow {
    pub context: Option<String>,
    pub wrapped_key: Option<Vec<u8>>,
    pub requests_ip: Option<i64>,
    pub requests_phone: Option<i64>,
    pub requests_email: Option<i64>,
}

#[derive(sqlx::FromRow)]
pub struct CustomerRiskRow {
    pub requests_customer: i64,
    pub failures: i64,
    pub password_changed_at: Option<i64>,
    pub totp_at: Option<i64>,
    pub codes_at: Option<i64>,
    pub email_at: Option<i64>,
    pub phone_at: Option<i64>,
    pub login_successes: i64,
}

/// The inherent methods behind the `Store`'s risk operations (`r_*`), for `$store`. Expanded
/// inside [`crate::impl_sql_store!`], which brings the names it uses into scope.
#[macro_export]
#[doc(hidden)]
macro_rules! impl_sql_risk {
    ($store:ty) => {
        impl $store {
            /// Writes (or replaces) the case's `risk_requests` row: blind indexes of the
            /// context's IP, device, phone and email, and the context sealed under the case's key.
            #[allow(clippy::too_many_arguments)]
            async fn write_request(
                tx: &mut Tx,
                keyring: &Keyring,
                key: &DataKey,
                tenant: TenantId,
                case: CaseId,
                at: Timestamp,
                customer: Option<CustomerId>,
                context: &RequestContext,
            ) -> StoreResult<()> {
                use $crate::risk::{fields, seal_context};
                let blind = |field: &str, value: &Option<String>| {
                    value.as_deref().map(|v| sealing::blind(keyring, tenant, field, v))
                };
                let device = context.device().map(str::to_owned);
                let done = sqlx::query(
                    "INSERT INTO risk_requests \
                     (case_id, tenant_id, at, customer_id, ip_bidx, device_bidx, phone_bidx, email_bidx, \
                      named_phone_bidx, named_email_bidx, context) \
                     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM cases WHERE id = $1 AND tenant_id = $2 \
                     ON CONFLICT (case_id) DO UPDATE SET customer_id = excluded.customer_id, ip_bidx = excluded.ip_bidx, \
                     device_bidx = excluded.device_bidx, phone_bidx = excluded.phone_bidx, \
                     email_bidx = excluded.email_bidx, named_phone_bidx = excluded.named_phone_bidx, \
                     named_email_bidx = excluded.named_email_bidx, context = excluded.context",
                )
                .bind(case.to_string())
                .bind(tenant.to_string())
                .bind(micros(at))
                .bind(customer.map(|c| c.to_string()))
                .bind(blind(fields::IP, &context.ip))
                .bind(blind(fields::DEVICE, &device))
                .bind(blind(fields::PHONE, &context.phone))
                .bind(blind(fields::EMAIL, &context.email))
                .bind(blind(fields::PHONE, &context.named_phone))
                .bind(blind(fields::EMAIL, &context.named_email))
                .bind(seal_context(key, case, context))
                .execute(&mut **tx)
                .await
                .map_err(Self::map_err)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            async fn r_record_request(
                &self,
                tenant: TenantId,
                case: CaseId,
                at: Timestamp,
                customer: Option<CustomerId>,
                context: &RequestContext,
            ) -> StoreResult<()> {
                let keyring = self.keys.get()?;
                let mut tx = self.write_tx().await?;
                let Some(key) = Self::case_key_in(&mut tx, &keyring, case).await? else {
                    return Err(StoreError::NotFound);
                };
                // What the request already had stays; what it lacked is filled in.
                let existing: Option<(Option<String>, Option<String>)> =
                    sqlx::query_as("SELECT context, customer_id FROM risk_requests WHERE case_id = $1 AND tenant_id = $2")
                        .bind(case.to_string())
                        .bind(tenant.to_string())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(Self::map_err)?;
                let (context, customer, at) = match existing {
                    Some((sealed, stored_customer)) => {
                        let before = match sealed.as_deref() {
                            Some(sealed) => $crate::risk::open_context(&key, case, sealed)?,
                            None => RequestContext::default(),
                        };
                        let stored_customer = stored_customer
                            .as_deref()
                            .map(|c| $crate::regain_store::codec::parse_column("risk_requests.customer_id", c, CustomerId::parse))
                            .transpose()?;
                        // What the intake saw (the caller ID, the sender) stays; identification
                        // only fills in what it lacked.
                        (before.updated_by(context), customer.or(stored_customer), at)
                    }
                    None => (context.clone(), customer, at),
                };
                Self::write_request(&mut tx, &keyring, &key, tenant, case, at, customer, &context).await?;
                tx.commit().await.map_err(Self::map_err)
            }

            async fn r_risk_history(
                &self,
                tenant: TenantId,
                case: CaseId,
                customer: Option<CustomerId>,
                windows: &RiskWindows,
                now: Timestamp,
            ) -> StoreResult<RiskHistory> {
                use $crate::risk::{open_context, CustomerRiskRow, RequestRow};
                let keyring = self.keys.get()?;
                let since = |window: $crate::regain_core::chrono::Duration| micros(now - window);
                let case_text = case.to_string();
                let tenant_text = tenant.to_string();
                let customer_text = customer.map(|c| c.to_string());
                // Three independent statements, each on a connection of its own, side by side.
                let request = async {
                    sqlx::query_as::<_, RequestRow>(&$crate::risk::REQUEST_HISTORY)
                    .bind(&case_text)
                    .bind(&tenant_text)
                    .bind(since(windows.ip))
                    .bind(since(windows.phone))
                    .bind(since(windows.email))
                    .bind(micros(now))
                    .fetch_optional(self.read_pool())
                    .await
                    .map_err(Self::map_err)
                };
                // Customer ids are unique across tenants and this one comes from the tenant's own
                // case; the sign-in count stays an index-only count on (customer_id, success, at)
                // (a tenant filter would read all of the customer's sign-in rows).
                let counts = async {
                    let Some(customer_text) = &customer_text else { return Ok(None) };
                    sqlx::query_as::<_, CustomerRiskRow>(
                        "SELECT \
                         (SELECT COUNT(*) FROM risk_requests WHERE tenant_id = $1 AND customer_id = $2 AND at > $3 AND at <= $6) AS requests_customer, \
                         (SELECT COUNT(*) FROM verification_attempts WHERE tenant_id = $1 AND customer_id = $2 AND counted = $4 AND at > $5) AS failures, \
                         (SELECT k.updated_at FROM customer_credentials k JOIN customers c ON c.id = k.customer_id \
                           WHERE c.tenant_id = $1 AND k.customer_id = $2) AS password_changed_at, \
                         (SELECT MAX(confirmed_at) FROM customer_totp WHERE tenant_id = $1 AND customer_id = $2) AS totp_at, \
                         (SELECT MAX(created_at) FROM customer_recovery_codes WHERE tenant_id = $1 AND customer_id = $2) AS codes_at, \
                         (SELECT MAX(added_at) FROM customer_emails WHERE tenant_id = $1 AND customer_id = $2) AS email_at, \
                         (SELECT MAX(added_at) FROM customer_phones WHERE tenant_id = $1 AND customer_id = $2) AS phone_at, \
                         (SELECT COUNT(*) FROM customer_logins WHERE customer_id = $2 AND success = $4) AS login_successes",
                    )
                    .bind(&tenant_text)
                    .bind(customer_text)
                    .bind(since(windows.customer))
                    .bind(true)
                    .bind(since(windows.failures))
                    .bind(micros(now))
                    .fetch_one(self.read_pool())
                    .await
                    .map(Some)
                    .map_err(Self::map_err)
                };
                let logins = async {
                    let Some(customer_text) = &customer_text else { return Ok(Vec::new()) };
                    sqlx::query_as::<_, (Option<String>, Option<String>)>(
                        "SELECT ip, user_agent FROM customer_logins WHERE customer_id = $1 AND success = $2 \
                         AND tenant_id = $4 ORDER BY at DESC LIMIT $3",
                    )
                    .bind(customer_text)
                    .bind(true)
                    .bind(i64::from(windows.logins_max))
                    .bind(&tenant_text)
                    .fetch_all(self.read_pool())
                    .await
                    .map_err(Self::map_err)
                };
                let (request, counts, logins) = $crate::futures::join!(request, counts, logins);
                let mut history = RiskHistory::default();
                if let Some(row) = request? {
                    let key = sealing::case_key(&keyring, case, row.wrapped_key.as_deref())?;
                    if let (Some(key), Some(sealed)) = (key, row.context.as_deref()) {
                        history.context = open_context(&key, case, sealed)?;
                    }
                    let count = |n: Option<i64>| n.map(|n| u32::try_from(n).unwrap_or(u32::MAX));
                    history.requests_ip = count(row.requests_ip);
                    history.requests_phone = count(row.requests_phone);
                    history.requests_email = count(row.requests_email);
                }
                let Some(row) = counts? else { return Ok(history) };
                let count = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
                history.requests_customer = Some(count(row.requests_customer));
                history.failures = Some(count(row.failures));
                history.password_changed_at = row.password_changed_at.map($crate::regain_store::codec::timestamp);
                history.factor_changed_at = row.totp_at.max(row.codes_at).map($crate::regain_store::codec::timestamp);
                history.contact_changed_at = row.email_at.max(row.phone_at).map($crate::regain_store::codec::timestamp);
                history.login_successes = count(row.login_successes);
                for (ip, user_agent) in logins? {
                    let login = PastLogin { ip, user_agent };
                    if !history.logins.contains(&login) {
                        history.logins.push(login);
                    }
                }
                Ok(history)
            }

            async fn r_request_hours(&self, tenant: TenantId, since: Timestamp) -> StoreResult<[u32; 24]> {
                let rows: Vec<(i64, i64)> = sqlx::query_as(
                    "SELECT (at / 3600000000) % 24 AS hour, COUNT(*) AS n FROM risk_requests \
                     WHERE tenant_id = $1 AND at > $2 GROUP BY (at / 3600000000) % 24",
                )
                .bind(tenant.to_string())
                .bind(micros(since))
                .fetch_all(self.read_pool())
                .await
                .map_err(Self::map_err)?;
                let mut hours = [0u32; 24];
                for (hour, n) in rows {
                    if let Some(slot) = usize::try_from(hour).ok().and_then(|h| hours.get_mut(h)) {
                        *slot = u32::try_from(n).unwrap_or(u32::MAX);
                    }
                }
                Ok(hours)
            }
        }
    };
}
