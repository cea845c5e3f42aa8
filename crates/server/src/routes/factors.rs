//! The built-in directory's second factors and knowledge answers (issue 4 item 3, 4):
//! a signed-in customer enrolls an authenticator app (otpauth URI and a QR code as SVG) and
//! gets saved recovery codes, shown once; the tenant's system stores knowledge answers, kept
//! as Argon2id hashes of the normalized text.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use regain_core::totp::{encode_secret, otpauth_uri, verify_totp, TotpParams};
use regain_core::{Actor, CustomerId, TenantId, ValidationError};
use regain_store::AuditRecord;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use utoipa::ToSchema;

use super::directory::CustomerPrincipal;
use crate::auth::{perm, Authorized};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiJson;
use crate::state::AppState;

/// Saved recovery codes issued at a time.
pub const RECOVERY_CODES: usize = 10;
/// Characters per recovery code: 16 of base32 is 80 bits (SECURITY.md M2: at least 64).
const RECOVERY_CODE_CHARS: usize = 16;
/// A new set of recovery codes at most this often: each set is told to every address on the
/// account, so a password alone must not turn the endpoint into a mail and SMS flood (T9).
pub const RECOVERY_CODES_EVERY_MINUTES: i64 = 10;

async fn signed_in(state: &AppState, slug: &str, customer: &CustomerPrincipal) -> ApiResult<(TenantId, String)> {
    let tenant = super::directory::signed_in_tenant(state, slug, customer).await?;
    Ok((tenant.id, tenant.display_name))
}

#[derive(Serialize, ToSchema)]
pub struct TotpEnrollmentView {
    /// Base32, for typing into an app by hand.
    pub secret: String,
    pub otpauth_uri: String,
    /// The URI as a QR code, an SVG document.
    pub qr_svg: String,
}

/// Start enrolling an authenticator app: confirm it with a code to finish.
#[utoipa::path(post, path = "/api/v1/directory/{tenant}/me/totp", tag = "directory",
    params(("tenant" = String, Path, description = "The tenant's slug")), security(("customer_bearer" = [])), responses(
    (status = 200, body = TotpEnrollmentView),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "An authenticator is already enrolled", body = Problem, content_type = "application/problem+json"),
))]
pub async fn begin_totp(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    customer: CustomerPrincipal,
) -> ApiResult<Json<TotpEnrollmentView>> {
    let (tenant, tenant_name) = signed_in(&state, &slug, &customer).await?;
    let id = customer.0.customer_id;
    let record = state.store.customer(tenant, id).await?.ok_or(ApiError::Unauthenticated)?;
    let mut secret = [0u8; 20];
    state.entropy.fill(&mut secret);
    let now = state.now();
    let audit = AuditRecord::new(Some(tenant), Actor::Customer { id }, "customer.totp_enrollment_started", now);
    state.store.begin_totp_enrollment(tenant, id, &secret, &audit).await?;
    let uri = otpauth_uri(&tenant_name, &record.username, &secret, &TotpParams::default());
    let qr = qrcode::QrCode::new(uri.as_bytes()).map_err(|e| ApiError::Internal(format!("QR code: {e}")))?;
    let qr_svg = qr.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).build();
    Ok(Json(TotpEnrollmentView { secret: encode_secret(&secret), otpauth_uri: uri, qr_svg }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmTotp {
    /// The app's current code.
    pub code: String,
}

/// Finish enrolling the authenticator app with its current code.
#[utoipa::path(post, path = "/api/v1/directory/{tenant}/me/totp/confirm", tag = "directory", request_body = ConfirmTotp,
    params(("tenant" = String, Path, description = "The tenant's slug")), security(("customer_bearer" = [])), responses(
    (status = 204, description = "Enrolled"),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "No enrollment was started", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "The code is not right", body = Problem, content_type = "application/problem+json"),
))]
pub async fn confirm_totp(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    customer: CustomerPrincipal,
    ApiJson(req): ApiJson<ConfirmTotp>,
) -> ApiResult<StatusCode> {
    let (tenant, _) = signed_in(&state, &slug, &customer).await?;
    let id = customer.0.customer_id;
    let enrollment = state.store.customer_totp(tenant, id).await?.ok_or_else(|| ApiError::Conflict {
        code: "not-enrolling",
        detail: "no authenticator enrollment was started".into(),
    })?;
    let now = state.now();
    let wrong = || ApiError::Validation(ValidationError::new("code", "the code is not right; check the app's clock"));
    let step = verify_totp(&enrollment.secret, &req.code, now, &TotpParams::default(), 1, None).ok_or_else(wrong)?;
    let audit = AuditRecord::new(Some(tenant), Actor::Customer { id }, "customer.totp_enrolled", now);
    let step = i64::try_from(step).map_err(|_| wrong())?;
    if !state.store.claim_customer_totp_step(tenant, id, step, Some(&audit)).await? {
        return Err(wrong());
    }
    // The enrollment stands; a notice that cannot be queued is logged, not turned into a
    // failure the customer would retry.
    if let Err(e) = notify_factor(&state, tenant, id, None, "An authenticator app").await {
        tracing::error!(error = %e, "could not queue the notice of a new authenticator app");
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct RecoveryCodesView {
    /// Shown this once: keep them somewhere safe. Each works once. Any earlier codes stop working.
    pub codes: Vec<String>,
}

/// Issue a new set of saved recovery codes, replacing any earlier ones.
#[utoipa::path(post, path = "/api/v1/directory/{tenant}/me/recovery-codes", tag = "directory",
    params(("tenant" = String, Path, description = "The tenant's slug")), security(("customer_bearer" = [])), responses(
    (status = 200, body = RecoveryCodesView),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
    (status = 429, description = "A set was made less than 10 minutes ago", body = Problem, content_type = "application/problem+json"),
))]
pub async fn recovery_codes(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    customer: CustomerPrincipal,
) -> ApiResult<Json<RecoveryCodesView>> {
    let (tenant, _) = signed_in(&state, &slug, &customer).await?;
    let id = customer.0.customer_id;
    let every = chrono::Duration::minutes(RECOVERY_CODES_EVERY_MINUTES);
    let too_soon = |last: regain_core::Timestamp| {
        let wait = (last + every - state.now()).num_seconds().max(1);
        ApiError::TooSoon {
            code: "too-soon",
            retry_after_s: u64::try_from(wait).unwrap_or(1),
            detail: format!(
                "a new set of recovery codes was made at {}; the next can be made from {}",
                last.format("%Y-%m-%d %H:%M:%S UTC"),
                (last + every).format("%Y-%m-%d %H:%M:%S UTC")
            ),
        }
    };
    if let Some(last) = state.store.factor_times(tenant, id).await?.recovery_codes_issued_at {
        if state.now() < last + every {
            return Err(too_soon(last));
        }
    }
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code(state.entropy.as_ref())).collect();
    let normalized: Vec<String> = codes.iter().map(|c| c.replace('-', "")).collect();
    let audit = AuditRecord::new(Some(tenant), Actor::Customer { id }, "customer.recovery_codes_issued", state.now());
    // Decided again in the store's transaction: requests at once do not all pass the read above.
    match state.store.replace_recovery_codes(tenant, id, &normalized, Some(state.now() - every), &audit).await {
        Ok(()) => {}
        Err(regain_store::StoreError::Precondition(_)) => return Err(too_soon(state.now())),
        Err(e) => return Err(e.into()),
    }
    if let Err(e) = notify_factor(&state, tenant, id, None, "A new set of recovery codes").await {
        tracing::error!(error = %e, "could not queue the notice of new recovery codes");
    }
    Ok(Json(RecoveryCodesView { codes }))
}

/// Tells every registered address, emails and phones, verified or not (SECURITY.md P3), that
/// a sign-in method was set up, each with a "this wasn't me" link — for `case` when one stands
/// behind the change (the re-enrollment of an MFA reset), else for none (a report opens a case
/// for the security team): the customer hears of it even when someone else, with their
/// password, did it (and such a factor does not count for recovery until the policy's
/// `recent_contact_days` have passed). The links and messages are one write.
pub(crate) async fn notify_factor(
    state: &AppState,
    tenant_id: TenantId,
    customer_id: CustomerId,
    case: Option<&regain_core::Case>,
    factor: &str,
) -> ApiResult<()> {
    let tenant = state.store.tenant(tenant_id).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    let Some(customer) = state.store.customer(tenant_id, customer_id).await? else { return Ok(()) };
    let values = std::collections::BTreeMap::from([
        ("factor", factor.to_owned()),
        ("when", state.now().format("%Y-%m-%d %H:%M UTC").to_string()),
    ]);
    let effects = crate::recovery::reported_notices(state, &tenant, case, &customer, "factor_added", values).await?;
    state.store.apply_effects(state.now(), &effects).await?;
    Ok(())
}

/// `ABCD-EFGH-IJKL-MNOP`: 16 characters of RFC 4648 base32 from the CSPRNG.
pub fn new_recovery_code(entropy: &dyn regain_core::Entropy) -> String {
    let mut bytes = [0u8; 10];
    entropy.fill(&mut bytes);
    let text = data_encoding::BASE32_NOPAD.encode(&bytes);
    let chars: Vec<char> = text.chars().take(RECOVERY_CODE_CHARS).collect();
    chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-")
}

/// A recovery code as typed (any case, dashes and spaces anywhere) in its stored form.
pub fn normalize_recovery_code(input: &str) -> ApiResult<String> {
    let code: String = input.chars().filter(|c| !c.is_whitespace() && *c != '-').collect::<String>().to_uppercase();
    let alphabet = |c: char| c.is_ascii_uppercase() || ('2'..='7').contains(&c);
    if code.chars().count() != RECOVERY_CODE_CHARS || !code.chars().all(alphabet) {
        return Err(
            ValidationError::new("code", "a recovery code is 16 letters and digits, like ABCD-EFGH-IJKL-MNOP").into()
        );
    }
    Ok(code)
}

/// A knowledge answer in the form that is hashed and compared: Unicode-normalized, accents
/// dropped, case-folded, punctuation removed, spacing collapsed — so "  Fluffy!" is "fluffy".
pub fn normalize_answer(input: &str) -> ApiResult<String> {
    let folded: String = input
        .nfkd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    let answer = folded.split_whitespace().collect::<Vec<_>>().join(" ");
    if answer.is_empty() || answer.chars().count() > 200 {
        return Err(ValidationError::new("answer", "must have 1 to 200 letters or digits").into());
    }
    Ok(answer)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeAnswerBody {
    /// A key naming the question: `first_pet`, `last_transaction` (1–64 of a-z, 0-9, _).
    pub question: String,
    pub answer: String,
}

/// Store a knowledge answer for a customer (the tenant's system: the last transaction, a
/// security question). Kept as an Argon2id hash; a signal only, never enough on its own.
#[utoipa::path(put, path = "/api/v1/customers/{id}/knowledge", tag = "customers", request_body = KnowledgeAnswerBody,
    params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])), responses(
    (status = 204, description = "Stored"),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json"),
))]
pub async fn set_knowledge(
    State(state): State<AppState>,
    auth: Authorized<perm::CustomersWrite>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<KnowledgeAnswerBody>,
) -> ApiResult<StatusCode> {
    let tenant = auth.tenant()?;
    let customer = CustomerId::parse("id", &id).map_err(|_| ApiError::not_found("customer"))?;
    let question_ok = (1..=64).contains(&req.question.len())
        && req.question.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !question_ok {
        return Err(ValidationError::new("question", "must be 1-64 characters of a-z, 0-9 and _").into());
    }
    let answer = normalize_answer(&req.answer)?;
    let hash = state.hasher.hash(&answer).await?;
    let audit = AuditRecord::new(Some(tenant), auth.actor, "customer.knowledge_set", state.now());
    state.store.set_knowledge_answer(tenant, customer, &req.question, &hash, &audit).await.map_err(|e| match e {
        regain_store::StoreError::NotFound => ApiError::not_found("customer"),
        other => other.into(),
    })?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use regain_core::env::SeededEntropy;

    #[test]
    fn recovery_codes_are_long_enough_and_normalize_back() {
        let entropy = SeededEntropy::new(7);
        let code = new_recovery_code(&entropy);
        assert_eq!(code.len(), 19, "{code}");
        let typed = code.to_lowercase().replace('-', " ");
        assert_eq!(normalize_recovery_code(&typed).ok(), Some(code.replace('-', "")));
        assert!(normalize_recovery_code("ABCD-EFGH").is_err());
        assert!(normalize_recovery_code("ABCD-EFGH-IJKL-MNO1").is_err(), "1 is not base32");
    }

    #[test]
    fn answers_normalize_like_a_person_would_expect() {
        for (input, expected) in [("  Fluffy! ", "fluffy"), ("Crème  Brûlée", "creme brulee"), ("O'Neil", "o neil")]
        {
            assert_eq!(normalize_answer(input).ok().as_deref(), Some(expected), "{input}");
        }
        assert!(normalize_answer(" !? ").is_err());
    }
}
