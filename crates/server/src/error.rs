//! One error type for the whole API, rendered as RFC 9457 problem details. Internals never leak:
//! a 5xx says what kind of trouble, not which query failed. The error is logged once, by the
//! middleware, from the [`ProblemLog`] extension the response carries.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use regain_core::case::CaseError;
use regain_core::ValidationError;
use regain_hashing::HashError;
use regain_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Validation(#[from] ValidationError),
    #[error("authentication required")]
    Unauthenticated,
    #[error("{0}")]
    InvalidCredentials(&'static str),
    #[error("your role does not allow this")]
    Forbidden,
    #[error("{0}")]
    NotFound(String),
    #[error("this route does not accept that method")]
    MethodNotAllowed,
    /// A uniqueness rule: `field` is already taken by another record.
    #[error("{field} is already in use")]
    Duplicate { field: String },
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("too many requests; try again later")]
    TooManyRequests,
    /// 429 with its own problem code, and the seconds to wait as `Retry-After`.
    #[error("{detail}")]
    TooSoon { code: &'static str, detail: String, retry_after_s: u64 },
    /// A refusal with its own status and problem code (a rejected code: 422, an expired one:
    /// 410, a customer whose recovery is on hold: 423).
    #[error("{detail}")]
    Refused { status: StatusCode, code: &'static str, detail: String },
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

/// An RFC 9457 problem details object.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem: `urn:regain:problem:<code>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Which input fields are wrong, for validation problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FieldError {
    /// The field, as a path: `emails/0`.
    pub field: String,
    pub message: String,
}

/// Attached to error responses so the logging middleware can log each error once, with the
/// internal detail that the client does not see.
#[derive(Debug, Clone)]
pub struct ProblemLog {
    pub code: &'static str,
    pub internal: Option<String>,
}

impl ApiError {
    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("no such {what}"))
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
            Self::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation", "Invalid input"),
            Self::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated", "Authentication required"),
            Self::InvalidCredentials(_) => (StatusCode::UNAUTHORIZED, "invalid-credentials", "Invalid credentials"),
            Self::Forbidden => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed"),
            Self::Duplicate { .. } => (StatusCode::CONFLICT, "duplicate", "Conflict"),
            Self::Conflict { code, .. } => (StatusCode::CONFLICT, code, "Conflict"),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", "Payload too large"),
            Self::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", "Unsupported media type")
            }
            Self::TooManyRequests => (StatusCode::TOO_MANY_REQUESTS, "too-many-requests", "Too many requests"),
            Self::TooSoon { code, .. } => (StatusCode::TOO_MANY_REQUESTS, code, "Too many requests"),
            Self::Refused { status, code, .. } => (*status, code, status.canonical_reason().unwrap_or("Refused")),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error"),
        }
    }
}

impl ApiError {
    /// The problem document a client sees for this error.
    pub fn problem(&self) -> Problem {
        let (status, code, title) = self.parts();
        let errors = match self {
            Self::Validation(e) => vec![FieldError { field: e.field.clone(), message: e.message.clone() }],
            Self::Duplicate { field } => vec![FieldError { field: field.clone(), message: "is already in use".into() }],
            _ => Vec::new(),
        };
        let detail = match self {
            Self::Internal(_) => "Something went wrong on our side; it has been logged.".to_owned(),
            Self::Unavailable(_) => {
                "The service cannot reach a resource it needs right now; try again shortly.".to_owned()
            }
            other => other.to_string(),
        };
        Problem {
            problem_type: format!("urn:regain:problem:{code}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            errors,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, _) = self.parts();
        let problem = self.problem();
        let wait = match &self {
            Self::TooSoon { retry_after_s, .. } => HeaderValue::from(*retry_after_s),
            _ => HeaderValue::from_static("5"),
        };
        let internal = match self {
            Self::Internal(internal) | Self::Unavailable(internal) => Some(internal),
            _ => None,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        match status {
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
                headers.insert(header::RETRY_AFTER, wait);
            }
            StatusCode::UNAUTHORIZED => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"regain\""));
            }
            _ => {}
        }
        response.extensions_mut().insert(ProblemLog { code, internal });
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound("no such record".into()),
            StoreError::Duplicate { field } => Self::Duplicate { field },
            StoreError::Conflict => Self::Conflict {
                code: "concurrent-update",
                detail: "the record was changed by someone else at the same time; read it again and retry".into(),
            },
            StoreError::Precondition(detail) => Self::Conflict { code: "precondition", detail },
            StoreError::Unavailable(detail) => Self::Unavailable(detail),
            // A locked or rotated-away keyring is the operator's problem, never the caller's.
            StoreError::Keyring(detail) | StoreError::Corrupt(detail) | StoreError::Other(detail) => {
                Self::Internal(detail)
            }
        }
    }
}

impl From<CaseError> for ApiError {
    fn from(e: CaseError) -> Self {
        let code = match &e {
            CaseError::Invalid(v) => return Self::Validation(v.clone()),
            CaseError::WrongState { .. } => "wrong-state",
            CaseError::ApprovalRequired => "approval-required",
            CaseError::SelfApproval => "self-approval",
            CaseError::ApproverRole | CaseError::RegainOnly | CaseError::SecurityOnly => return Self::Forbidden,
            CaseError::StillCoolingOff { .. } => "cooling-off",
            CaseError::NotExpired { .. } => "not-expired",
            CaseError::NotAnEscalation { .. } => "not-an-escalation",
            CaseError::BeyondTier { .. } => "beyond-tier",
            CaseError::AssignedElsewhere => "assigned-elsewhere",
            // Like a recovery hold: nothing proceeds until the security team has looked.
            CaseError::RiskHold { .. } => {
                return Self::Refused { status: StatusCode::LOCKED, code: "risk-hold", detail: e.to_string() }
            }
        };
        Self::Conflict { code, detail: e.to_string() }
    }
}

impl From<HashError> for ApiError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Overloaded => Self::Unavailable("password hashing queue is full".into()),
            other => Self::Internal(format!("password hashing: {other}")),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
