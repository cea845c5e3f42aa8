//! Message templates per tenant (issue 4 item 7): the wording of every message Regain sends a
//! customer, per channel. A tenant admin may replace the built-in wording; placeholders are
//! checked when saved (an unknown one, or an unclosed `{{`, is refused with its line and
//! column), and a code or link template must carry its code or link.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use regain_core::ValidationError;
use regain_delivery::{builtin, builtin_placeholders, Channel, Template, TemplateError, BUILTIN_NAMES};
use regain_store::{AuditRecord, StoredTemplate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{perm, Authorized};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiJson;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct TemplateView {
    /// verification_code, verification_link, recovery_code_used or recovery_blocked.
    pub name: String,
    /// `email` or `sms`.
    pub channel: String,
    /// Empty for SMS.
    pub subject: String,
    pub body: String,
    /// The `{{placeholders}}` this template may use.
    pub placeholders: Vec<String>,
    /// The tenant's own wording (`false`: the built-in one).
    pub custom: bool,
    /// Whether messages go out in this wording: `false` for a tenant's own that cannot be used
    /// (`problem` says why), in whose place the built-in wording is sent until it is saved again.
    pub in_use: bool,
    /// Why the tenant's own wording is not used: saved before a placeholder was asked for (a
    /// notice's `{{report_link}}`), or no longer parsing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

fn channel_of(text: &str) -> ApiResult<Channel> {
    match text {
        "email" => Ok(Channel::Email),
        "sms" => Ok(Channel::Sms),
        _ => Err(ApiError::not_found("template channel (email or sms)")),
    }
}

fn builtin_view(name: &str, channel: Channel) -> ApiResult<TemplateView> {
    let (subject, body) = builtin_text(name, channel)?;
    Ok(TemplateView {
        name: name.to_owned(),
        channel: channel.as_str().to_owned(),
        subject,
        body,
        placeholders: placeholders(name),
        custom: false,
        in_use: true,
        problem: None,
        updated_at: None,
    })
}

fn placeholders(name: &str) -> Vec<String> {
    builtin_placeholders(name).unwrap_or_default().iter().map(|p| (*p).to_owned()).collect()
}

/// The built-in wording, with its placeholders written back as `{{name}}`.
fn builtin_text(name: &str, channel: Channel) -> ApiResult<(String, String)> {
    let template = builtin(name, channel).ok_or_else(|| ApiError::not_found("template"))?;
    let names = builtin_placeholders(name).unwrap_or_default();
    let values = names.iter().map(|n| (*n, format!("{{{{{n}}}}}"))).collect();
    template.render(&values).map_err(|e| ApiError::Internal(format!("built-in template {name}: {e}")))
}

/// Every template, as the tenant's messages use them.
#[utoipa::path(get, path = "/api/v1/templates", tag = "templates", security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = [TemplateView]),
))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized<perm::TenantRead>,
) -> ApiResult<Json<Vec<TemplateView>>> {
    let tenant = auth.tenant()?;
    let own = state.store.message_templates(tenant).await?;
    let mut views = Vec::new();
    for name in BUILTIN_NAMES {
        for channel in [Channel::Email, Channel::Sms] {
            match own.iter().find(|t| t.name == *name && t.channel == channel.as_str()) {
                Some(t) => {
                    let problem = crate::verification::unusable(t);
                    views.push(TemplateView {
                        name: t.name.clone(),
                        channel: t.channel.clone(),
                        subject: t.subject.clone(),
                        body: t.body.clone(),
                        placeholders: placeholders(name),
                        custom: true,
                        in_use: problem.is_none(),
                        problem,
                        updated_at: Some(t.updated_at),
                    })
                }
                None => views.push(builtin_view(name, channel)?),
            }
        }
    }
    Ok(Json(views))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateBody {
    /// Ignored for SMS; required for email.
    #[serde(default)]
    pub subject: String,
    pub body: String,
}

fn template_problem(e: TemplateError) -> ApiError {
    let field = match &e {
        TemplateError::Unclosed { part, .. } | TemplateError::UnknownPlaceholder { part, .. } => *part,
        TemplateError::MissingValue { .. } => "body",
    };
    ValidationError::new(field, e.to_string()).into()
}

/// Replace the wording of one template on one channel.
#[utoipa::path(put, path = "/api/v1/templates/{name}/{channel}", tag = "templates", request_body = TemplateBody,
    params(("name" = String, Path), ("channel" = String, Path, description = "email or sms")),
    security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = TemplateView),
    (status = 404, description = "No such template or channel", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "An unknown placeholder, an unclosed `{{`, a missing code or link", body = Problem, content_type = "application/problem+json"),
))]
pub async fn set(
    State(state): State<AppState>,
    auth: Authorized<perm::TenantSettingsWrite>,
    Path((name, channel)): Path<(String, String)>,
    ApiJson(req): ApiJson<TemplateBody>,
) -> ApiResult<Json<TemplateView>> {
    let tenant = auth.tenant()?;
    let kind = channel_of(&channel)?;
    let allowed = builtin_placeholders(&name).ok_or_else(|| ApiError::not_found("template"))?;
    let subject = if kind == Channel::Sms { String::new() } else { req.subject.trim().to_owned() };
    if kind == Channel::Email && subject.is_empty() {
        return Err(ValidationError::new("subject", "an email needs a subject").into());
    }
    let limit = if kind == Channel::Sms { regain_delivery::SMS_BODY_CHARS_MAX } else { 10_000 };
    if req.body.trim().is_empty() || req.body.chars().count() > limit || subject.chars().count() > 200 {
        return Err(
            ValidationError::new("body", format!("must have 1 to {limit} characters (subject: up to 200)")).into()
        );
    }
    let parsed = Template::parse(&name, &subject, &req.body, allowed).map_err(template_problem)?;
    // The message is useless without what it exists to deliver; a notice, without its "this
    // wasn't me" link (SECURITY.md P3).
    if let Some(needed) = crate::verification::missing_placeholder(allowed, &parsed) {
        return Err(ValidationError::new("body", format!("must contain {{{{{needed}}}}}")).into());
    }
    let stored = StoredTemplate {
        name: name.clone(),
        channel: channel.clone(),
        subject,
        body: req.body,
        updated_at: state.now(),
    };
    let audit = AuditRecord::new(Some(tenant), auth.actor, "template.updated", state.now());
    state.store.set_message_template(tenant, &stored, &audit).await?;
    Ok(Json(TemplateView {
        name,
        channel,
        subject: stored.subject,
        body: stored.body,
        placeholders: allowed.iter().map(|p| (*p).to_owned()).collect(),
        custom: true,
        // Checked above, as it was saved.
        in_use: true,
        problem: None,
        updated_at: Some(stored.updated_at),
    }))
}

/// Go back to the built-in wording.
#[utoipa::path(delete, path = "/api/v1/templates/{name}/{channel}", tag = "templates",
    params(("name" = String, Path), ("channel" = String, Path, description = "email or sms")),
    security(("bearer" = []), ("cookie" = [])), responses(
    (status = 204, description = "The built-in wording is back"),
    (status = 404, description = "No such template, or the tenant had none of its own", body = Problem, content_type = "application/problem+json"),
))]
pub async fn reset(
    State(state): State<AppState>,
    auth: Authorized<perm::TenantSettingsWrite>,
    Path((name, channel)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let tenant = auth.tenant()?;
    channel_of(&channel)?;
    builtin_placeholders(&name).ok_or_else(|| ApiError::not_found("template"))?;
    let audit = AuditRecord::new(Some(tenant), auth.actor, "template.reset", state.now());
    if !state.store.delete_message_template(tenant, &name, &channel, &audit).await? {
        return Err(ApiError::not_found("custom template"));
    }
    Ok(StatusCode::NO_CONTENT)
}
