//! Customer records, provisioned by the tenant's systems: create one, import many (a bad row
//! never stops the good ones), read one, and search by an identifier. These return the full
//! record, so only tenant admins and integrations may call them; agents see customers through
//! cases, masked.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use regain_core::customer::{ContactDraft, ContactEmail, ContactPhone, CustomerDraft, CustomerLookup, NewCustomer};
use regain_core::{Actor, Customer, CustomerId, EmailAddress, PhoneE164, TenantId, ValidationError};
use regain_store::AuditRecord;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{perm, Authorized};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::passwords::check_new_password;
use crate::state::AppState;

/// Rows one import request may carry.
pub const IMPORT_ROWS_MAX: usize = 1_000;

#[derive(Deserialize, Serialize, ToSchema, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct EmailInput {
    pub address: String,
    #[serde(default)]
    pub verified: bool,
    /// When the address was added to the account in your system. Leave it out for one added
    /// now: a proof sent to a contact point added within the policy's `recent_contact_days`
    /// does not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize, Serialize, ToSchema, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct PhoneInput {
    /// E.164, or national format read in the tenant's default region.
    pub number: String,
    #[serde(default)]
    pub verified: bool,
    /// When the number was added to the account in your system; as for emails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize, Serialize, ToSchema, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct FactorsInput {
    #[serde(default)]
    pub totp: bool,
    #[serde(default)]
    #[schema(maximum = 100)]
    pub recovery_codes_remaining: u32,
    #[serde(default)]
    #[schema(maximum = 100)]
    pub passkeys: u32,
}

/// A customer record as a client system sends it.
#[derive(Deserialize, Serialize, ToSchema, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct CustomerInput {
    /// The id in the tenant's own system.
    pub external_id: Option<String>,
    pub username: String,
    pub account_number: Option<String>,
    pub full_name: String,
    #[serde(default)]
    pub emails: Vec<EmailInput>,
    #[serde(default)]
    pub phones: Vec<PhoneInput>,
    /// `active` by default.
    #[schema(value_type = Option<crate::openapi::vocabulary::CustomerStatus>, inline)]
    pub status: Option<String>,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub vip: bool,
    #[serde(default)]
    pub factors: FactorsInput,
    /// For tenants whose accounts live in Regain's built-in directory: the initial password.
    /// Hashed at once; never stored or shown.
    #[schema(write_only)]
    pub password: Option<String>,
}

impl CustomerInput {
    pub fn draft(&self) -> CustomerDraft {
        CustomerDraft {
            external_id: self.external_id.clone(),
            username: self.username.clone(),
            account_number: self.account_number.clone(),
            full_name: self.full_name.clone(),
            emails: self
                .emails
                .iter()
                .map(|e| ContactDraft { value: e.address.clone(), verified: e.verified, since: e.added_at })
                .collect(),
            phones: self
                .phones
                .iter()
                .map(|p| ContactDraft { value: p.number.clone(), verified: p.verified, since: p.added_at })
                .collect(),
            status: self.status.clone(),
            privileged: self.privileged,
            vip: self.vip,
            totp_enrolled: self.factors.totp,
            recovery_codes_remaining: self.factors.recovery_codes_remaining,
            passkeys: self.factors.passkeys,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ContactView {
    pub value: String,
    pub verified: bool,
    pub added_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct FactorsView {
    pub password: bool,
    pub totp: bool,
    pub recovery_codes_remaining: u32,
    pub passkeys: u32,
}

#[derive(Serialize, ToSchema)]
pub struct CustomerView {
    pub id: String,
    pub external_id: Option<String>,
    pub username: String,
    pub account_number: Option<String>,
    pub full_name: String,
    pub emails: Vec<ContactView>,
    pub phones: Vec<ContactView>,
    #[schema(value_type = crate::openapi::vocabulary::CustomerStatus, inline)]
    pub status: String,
    pub privileged: bool,
    pub vip: bool,
    pub factors: FactorsView,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Customer> for CustomerView {
    fn from(c: &Customer) -> Self {
        let email =
            |e: &ContactEmail| ContactView { value: e.address.to_string(), verified: e.verified, added_at: e.added_at };
        let phone =
            |p: &ContactPhone| ContactView { value: p.number.to_string(), verified: p.verified, added_at: p.added_at };
        Self {
            id: c.id.to_string(),
            external_id: c.external_id.clone(),
            username: c.username.clone(),
            account_number: c.account_number.clone(),
            full_name: c.full_name.clone(),
            emails: c.emails.iter().map(email).collect(),
            phones: c.phones.iter().map(phone).collect(),
            status: c.status.to_string(),
            privileged: c.flags.privileged,
            vip: c.flags.vip,
            factors: FactorsView {
                password: c.factors.password,
                totp: c.factors.totp,
                recovery_codes_remaining: c.factors.recovery_codes_remaining,
                passkeys: c.factors.passkeys,
            },
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// Validates and stores one customer record; the one path every way of creating customers
/// (API, import, command line, demo) goes through.
pub async fn create_customer_record(
    state: &AppState,
    tenant_id: TenantId,
    default_region: &str,
    input: &CustomerInput,
    actor: Actor,
) -> ApiResult<Customer> {
    let new = NewCustomer::parse(&input.draft(), default_region)?;
    let password_hash = match &input.password {
        Some(password) => {
            check_new_password("password", password, 8)?;
            Some(state.hasher.hash(password).await?)
        }
        None => None,
    };
    let id = CustomerId::generate(state.clock.as_ref(), state.entropy.as_ref());
    let customer = new.into_customer(id, tenant_id, state.now(), password_hash.is_some());
    // The entry names the record, never its personal data (SECURITY.md L5).
    let audit = AuditRecord::new(Some(tenant_id), actor, "customer.created", customer.created_at)
        .customer(customer.id)
        .data(serde_json::json!({"status": customer.status.as_str(), "password": password_hash.is_some()}));
    state.store.create_customer(&customer, password_hash.as_deref(), &audit).await?;
    Ok(customer)
}

async fn tenant_region(state: &AppState, tenant_id: TenantId) -> ApiResult<String> {
    let tenant = state.store.tenant(tenant_id).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    Ok(tenant.settings.default_region)
}

/// Create a customer record.
#[utoipa::path(post, path = "/api/v1/customers", tag = "customers", request_body = CustomerInput, security(("bearer" = []), ("cookie" = [])), responses(
    (status = 201, body = CustomerView),
    (status = 409, description = "The username, external id or account number is taken", body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json"),
))]
pub async fn create(
    State(state): State<AppState>,
    auth: Authorized<perm::CustomersWrite>,
    ApiJson(input): ApiJson<CustomerInput>,
) -> ApiResult<(StatusCode, Json<CustomerView>)> {
    let tenant_id = auth.tenant()?;
    let region = tenant_region(&state, tenant_id).await?;
    let customer = create_customer_record(&state, tenant_id, &region, &input, auth.actor).await?;
    tracing::info!(customer_id = %customer.id, "customer record created");
    Ok((StatusCode::CREATED, Json(CustomerView::from(&customer))))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// Up to 1,000 records.
    pub customers: Vec<CustomerInput>,
}

#[derive(Serialize, ToSchema)]
pub struct ImportRowResult {
    /// The row's position in the request, from 0.
    pub index: usize,
    /// The new record's id, when the row was stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Why the row was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
}

#[derive(Serialize, ToSchema)]
pub struct ImportReport {
    pub created: usize,
    pub failed: usize,
    pub rows: Vec<ImportRowResult>,
}

/// Import customer records in bulk. Each row is stored or refused on its own: a bad row never
/// stops the good ones, and the report says which row failed and why. If the service itself
/// fails midway (its database goes away), the remaining rows are reported as not tried.
#[utoipa::path(post, path = "/api/v1/customers/import", tag = "customers", request_body = ImportRequest, security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = ImportReport),
    (status = 422, description = "More rows than one request may carry", body = Problem, content_type = "application/problem+json"),
))]
pub async fn import(
    State(state): State<AppState>,
    auth: Authorized<perm::CustomersWrite>,
    ApiJson(req): ApiJson<ImportRequest>,
) -> ApiResult<Json<ImportReport>> {
    if req.customers.len() > IMPORT_ROWS_MAX {
        return Err(ValidationError::new("customers", format!("at most {IMPORT_ROWS_MAX} rows per request")).into());
    }
    let tenant_id = auth.tenant()?;
    let region = tenant_region(&state, tenant_id).await?;
    let mut rows = Vec::with_capacity(req.customers.len());
    let mut stopped: Option<ApiError> = None;
    for (index, input) in req.customers.iter().enumerate() {
        if let Some(e) = &stopped {
            // After a failure of the service itself, the rest are not tried: the report still
            // says exactly which rows were stored.
            rows.push(ImportRowResult { index, id: None, error: Some(e.problem()) });
            continue;
        }
        match create_customer_record(&state, tenant_id, &region, input, auth.actor).await {
            Ok(customer) => rows.push(ImportRowResult { index, id: Some(customer.id.to_string()), error: None }),
            Err(e @ (ApiError::Unavailable(_) | ApiError::Internal(_))) => {
                tracing::error!(row = index, error = %e, "customer import stopped");
                rows.push(ImportRowResult { index, id: None, error: Some(e.problem()) });
                stopped = Some(e);
            }
            Err(e) => rows.push(ImportRowResult { index, id: None, error: Some(e.problem()) }),
        }
    }
    let created = rows.iter().filter(|r| r.id.is_some()).count();
    tracing::info!(created, failed = rows.len() - created, "customer import");
    Ok(Json(ImportReport { created, failed: rows.len() - created, rows }))
}

/// Read one customer record.
#[utoipa::path(get, path = "/api/v1/customers/{id}", tag = "customers", params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = CustomerView),
    (status = 404, body = Problem, content_type = "application/problem+json"),
))]
pub async fn get(
    State(state): State<AppState>,
    auth: Authorized<perm::CustomersRead>,
    Path(id): Path<String>,
) -> ApiResult<Json<CustomerView>> {
    let id = CustomerId::parse("id", &id).map_err(|_| ApiError::not_found("customer"))?;
    let customer = state.store.customer(auth.tenant()?, id).await?.ok_or_else(|| ApiError::not_found("customer"))?;
    Ok(Json(CustomerView::from(&customer)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CustomerSearch {
    pub email: Option<String>,
    /// E.164, or national format in the tenant's region.
    pub phone: Option<String>,
    pub username: Option<String>,
    pub external_id: Option<String>,
    pub account_number: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CustomerList {
    pub items: Vec<CustomerView>,
}

/// Find customer records by exactly one identifier.
#[utoipa::path(get, path = "/api/v1/customers", tag = "customers", params(CustomerSearch), security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = CustomerList),
    (status = 422, description = "None or several identifiers given, or one malformed", body = Problem, content_type = "application/problem+json"),
))]
pub async fn search(
    State(state): State<AppState>,
    auth: Authorized<perm::CustomersRead>,
    ApiQuery(q): ApiQuery<CustomerSearch>,
) -> ApiResult<Json<CustomerList>> {
    let tenant_id = auth.tenant()?;
    let given =
        [&q.email, &q.phone, &q.username, &q.external_id, &q.account_number].iter().filter(|v| v.is_some()).count();
    if given != 1 {
        return Err(ValidationError::new(
            "query",
            "give exactly one of email, phone, username, external_id, account_number",
        )
        .into());
    }
    let lookup = if let Some(email) = &q.email {
        CustomerLookup::Email(EmailAddress::parse("email", email)?)
    } else if let Some(phone) = &q.phone {
        let region = tenant_region(&state, tenant_id).await?;
        CustomerLookup::Phone(PhoneE164::parse("phone", phone, &region)?)
    } else if let Some(username) = &q.username {
        CustomerLookup::Username(username.trim().to_owned())
    } else if let Some(external_id) = &q.external_id {
        CustomerLookup::ExternalId(external_id.trim().to_owned())
    } else {
        CustomerLookup::AccountNumber(q.account_number.as_deref().unwrap_or_default().trim().to_owned())
    };
    let customers = state.store.find_customers(tenant_id, &lookup).await?;
    Ok(Json(CustomerList { items: customers.iter().map(CustomerView::from).collect() }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomer {
    /// active, locked, disabled or frozen. Setting `active` on a locked record unlocks it and
    /// clears its failed-login count. A frozen record is only thawed by re-proofing, not here.
    #[schema(value_type = crate::openapi::vocabulary::CustomerStatus, inline)]
    pub status: String,
}

/// Change a customer record's status: lock, unlock, disable, or freeze it.
#[utoipa::path(patch, path = "/api/v1/customers/{id}", tag = "customers", params(("id" = String, Path)), request_body = UpdateCustomer, security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = CustomerView),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The record is frozen", body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json"),
))]
pub async fn update(
    State(state): State<AppState>,
    auth: Authorized<perm::CustomersWrite>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateCustomer>,
) -> ApiResult<Json<CustomerView>> {
    let tenant_id = auth.tenant()?;
    let id = CustomerId::parse("id", &id).map_err(|_| ApiError::not_found("customer"))?;
    let status = regain_core::CustomerStatus::parse("status", req.status.trim())?;
    let current = state.store.customer(tenant_id, id).await?.ok_or_else(|| ApiError::not_found("customer"))?;
    if current.status == regain_core::CustomerStatus::Frozen && status != regain_core::CustomerStatus::Frozen {
        return Err(ApiError::Conflict {
            code: "frozen",
            detail: "a frozen record is thawed only by re-proofing the customer's identity".into(),
        });
    }
    let audit = AuditRecord::new(Some(tenant_id), auth.actor, "customer.status_changed", state.now())
        .customer(id)
        .data(serde_json::json!({"from": current.status.as_str(), "to": status.as_str()}));
    let updated = state.store.set_customer_status(tenant_id, id, status, &audit).await?;
    tracing::info!(customer_id = %id, from = %current.status, to = %status, "customer status changed");
    Ok(Json(CustomerView::from(&updated)))
}

#[derive(Serialize, ToSchema)]
pub struct ErasureView {
    pub customer_id: String,
    /// Cases of the customer whose free text (summary, notes, reasons) was erased with them.
    /// The cases themselves stay, for the desk's records, naming the customer only by id.
    pub cases_erased: u64,
    pub erased_at: DateTime<Utc>,
}

/// Erases a customer (GDPR Art. 17) for the API and the command line: the record goes and its
/// keys are destroyed; the audit log keeps its entries, which no longer open.
pub async fn erase_customer_record(
    state: &AppState,
    tenant_id: TenantId,
    id: CustomerId,
    actor: Actor,
) -> ApiResult<ErasureView> {
    let now = state.now();
    let audit = AuditRecord::new(Some(tenant_id), actor, "customer.erased", now).customer(id);
    let erased = state.store.erase_customer(tenant_id, id, &audit).await.map_err(|e| match e {
        regain_store::StoreError::NotFound => ApiError::not_found("customer"),
        other => other.into(),
    })?;
    tracing::info!(customer_id = %id, cases = erased.cases, "customer erased");
    Ok(ErasureView { customer_id: id.to_string(), cases_erased: erased.cases, erased_at: now })
}

/// Erase a customer (GDPR Art. 17): the record, its contacts, credentials, sessions and login
/// history are deleted and its keys destroyed, so every copy of its personal data, in case
/// timelines and the audit log, can no longer be read. Every audit proof still verifies.
/// Refused while one of the customer's cases is open.
#[utoipa::path(delete, path = "/api/v1/customers/{id}", tag = "customers", params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = ErasureView),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "A case of the customer is still open", body = Problem, content_type = "application/problem+json"),
))]
pub async fn erase(
    State(state): State<AppState>,
    auth: Authorized<perm::CustomersErase>,
    Path(id): Path<String>,
) -> ApiResult<Json<ErasureView>> {
    let tenant_id = auth.tenant()?;
    let id = CustomerId::parse("id", &id).map_err(|_| ApiError::not_found("customer"))?;
    Ok(Json(erase_customer_record(&state, tenant_id, id, auth.actor).await?))
}

/// Entries of each kind an access export carries at most.
pub const EXPORT_ITEMS_MAX: u32 = 10_000;

#[derive(Serialize, ToSchema)]
pub struct LoginView {
    pub at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub success: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ExportedCase {
    pub case: super::cases::CaseView,
    pub timeline: Vec<super::cases::TimelineEntryView>,
}

#[derive(Serialize, ToSchema)]
pub struct ExportedAuditEntry {
    /// The entry's place in the log; absent until it is placed.
    pub seq: Option<u64>,
    pub action: String,
    pub at: DateTime<Utc>,
    /// The canonical entry text, as logged.
    pub entry: String,
}

/// Everything Regain holds about one customer (GDPR Art. 15).
#[derive(Serialize, ToSchema)]
pub struct CustomerExport {
    pub generated_at: DateTime<Utc>,
    pub customer: CustomerView,
    pub cases: Vec<ExportedCase>,
    /// Sign-ins to the built-in directory, newest first.
    pub logins: Vec<LoginView>,
    /// Audit entries that name the customer, oldest first.
    pub audit_entries: Vec<ExportedAuditEntry>,
}

/// Export everything held about a customer as JSON (GDPR Art. 15). The export itself is an
/// audit entry.
#[utoipa::path(get, path = "/api/v1/customers/{id}/export", tag = "customers", params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = CustomerExport),
    (status = 404, body = Problem, content_type = "application/problem+json"),
))]
pub async fn export(
    State(state): State<AppState>,
    auth: Authorized<perm::CustomersRead>,
    Path(id): Path<String>,
) -> ApiResult<Json<CustomerExport>> {
    let tenant_id = auth.tenant()?;
    let id = CustomerId::parse("id", &id).map_err(|_| ApiError::not_found("customer"))?;
    let customer = state.store.customer(tenant_id, id).await?.ok_or_else(|| ApiError::not_found("customer"))?;
    let now = state.now();

    let mut cases = Vec::new();
    let filter = regain_store::CaseFilter { customer_id: Some(id), ..regain_store::CaseFilter::default() };
    let mut after = None;
    loop {
        let page = regain_store::PageRequest { limit: regain_store::PageRequest::LIMIT_MAX, after };
        let found = state.store.list_cases(tenant_id, &filter, &page).await?;
        for case in &found.items {
            let timeline = state.store.timeline(tenant_id, case.id).await?;
            cases.push(ExportedCase {
                case: super::cases::CaseView::new(case, Some(&customer), now),
                timeline: timeline.iter().map(super::cases::TimelineEntryView::from).collect(),
            });
        }
        match found.next_after {
            Some(next) if cases.len() < EXPORT_ITEMS_MAX as usize => after = Some(next),
            _ => break,
        }
    }
    let logins = state.store.login_history(tenant_id, id, EXPORT_ITEMS_MAX).await?;
    let entries = state.store.audit_entries_for_customer(tenant_id, id, EXPORT_ITEMS_MAX).await?;
    let audit = AuditRecord::new(Some(tenant_id), auth.actor, "customer.exported", now).customer(id);
    state.store.record_audit(&audit).await?;
    tracing::info!(customer_id = %id, "customer data exported");
    Ok(Json(CustomerExport {
        generated_at: now,
        customer: CustomerView::from(&customer),
        cases,
        logins: logins
            .into_iter()
            .map(|l| LoginView { at: l.at, ip: l.ip, user_agent: l.user_agent, success: l.success })
            .collect(),
        audit_entries: entries
            .into_iter()
            .map(|e| ExportedAuditEntry { seq: e.seq, action: e.action, at: e.at, entry: e.entry })
            .collect(),
    }))
}
