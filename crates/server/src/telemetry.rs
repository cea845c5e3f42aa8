//! Request ids, tracing spans, Prometheus metrics, and logging each error once.
//!
//! Every request gets an `x-request-id` (kept if the client sent a sane one), returned in the
//! response and recorded on the request's span, so every log line of the request carries it.
//! Only the path is logged, never the query string (a customer search has an email in it) or
//! headers (tokens).

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower_http::request_id::{MakeRequestId, RequestId};

use crate::error::ProblemLog;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

static METRICS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder once per process (tests start many servers).
pub fn init_metrics() {
    METRICS.get_or_init(|| PrometheusBuilder::new().install_recorder().ok());
}

pub fn render_metrics() -> String {
    METRICS.get().and_then(Option::as_ref).map(PrometheusHandle::render).unwrap_or_default()
}

/// A fresh UUIDv4 for requests that came without a usable id.
#[derive(Clone, Default)]
pub struct MakeId;

impl MakeRequestId for MakeId {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).ok().map(RequestId::new)
    }
}

/// Keeps a client's `x-request-id` only if it is short and plain (letters, digits, `-_.`), so
/// what lands in every log line cannot forge or break a record (SECURITY.md L3); otherwise it is
/// dropped and [`MakeId`] assigns one.
pub fn sanitize_request_id<B>(mut request: axum::http::Request<B>) -> axum::http::Request<B> {
    let plain = |v: &HeaderValue| {
        !v.is_empty()
            && v.len() <= 64
            && v.as_bytes().iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    if request.headers().get(REQUEST_ID_HEADER).is_some_and(|v| !plain(v)) {
        request.headers_mut().remove(REQUEST_ID_HEADER);
    }
    request
}

pub fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let request_id = request.headers().get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("-");
    let path = loggable_path(request.uri().path());
    tracing::info_span!("request", request_id, method = %request.method(), path = %path)
}

/// The pages whose path carries a customer link's token.
const LINK_PAGES: [(&str, &str); 4] = [
    ("/verify/", "/verify/<token>"),
    ("/reset/", "/reset/<token>"),
    ("/enroll/", "/enroll/<token>"),
    ("/report/", "/report/<token>"),
];

/// The path as logs may show it: a path that carries a secret (a customer link's token: the
/// confirmation, reset, re-enrollment and report links) has it replaced, so no log line can
/// replay the link (SECURITY.md L2, T2).
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    match LINK_PAGES.iter().find(|(prefix, _)| path.starts_with(prefix)) {
        Some((_, redacted)) => std::borrow::Cow::Borrowed(redacted),
        None => std::borrow::Cow::Borrowed(path),
    }
}

/// Counts and times every request by route, and logs the request's outcome once: errors with
/// their problem code, 5xx with the internal detail the client did not see.
pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route =
        request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status();
    let elapsed = started.elapsed();
    let labels = [("method", method.clone()), ("route", route.clone()), ("status", status.as_u16().to_string())];
    metrics::counter!("regain_http_requests_total", &labels).increment(1);
    metrics::histogram!("regain_http_request_duration_seconds", &labels[..2]).record(elapsed.as_secs_f64());
    let elapsed_ms = elapsed.as_millis() as u64;
    match response.extensions().get::<ProblemLog>() {
        Some(problem) if status.is_server_error() => tracing::error!(
            status = status.as_u16(),
            problem = problem.code,
            detail = problem.internal.as_deref().unwrap_or(""),
            elapsed_ms,
            "request failed"
        ),
        Some(problem) => {
            tracing::info!(status = status.as_u16(), problem = problem.code, elapsed_ms, "request refused")
        }
        None => tracing::info!(status = status.as_u16(), elapsed_ms, "request served"),
    }
    response
}

#[cfg(test)]
mod loggable_path_tests {
    use super::loggable_path;

    #[test]
    fn a_customer_links_token_never_reaches_a_log_line() {
        for page in ["verify", "reset", "enroll", "report"] {
            assert_eq!(loggable_path(&format!("/{page}/Zm9vYmFyYmF6cXV4")), format!("/{page}/<token>"));
            // The page the token moved to carries none.
            assert_eq!(loggable_path(&format!("/{page}")), format!("/{page}"));
        }
        assert_eq!(loggable_path("/api/v1/cases/01a2/verification"), "/api/v1/cases/01a2/verification");
    }
}
