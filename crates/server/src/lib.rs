//! Regain's HTTP service: the REST API under `/api/v1` with its OpenAPI document, health and
//! metrics, authentication, middleware, errors, and startup.
//!
//! This crate never names a concrete store: it is handed an `Arc<dyn Store>`. The `cli` crate
//! picks the backend.

pub mod audit;
pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod outbox;
pub mod pages;
pub mod passwords;
pub mod periodic;
pub mod recovery;
pub mod risk;
pub mod routes;
pub mod state;
pub mod sweeper;
pub mod sys;
pub mod telemetry;
pub mod verification;
pub mod webhooks;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::IntoResponse;
use axum::{Extension, Router};
use tower::ServiceBuilder;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use config::ServerConfig;
use error::ApiError;
pub use state::AppState;

use routes::{
    api_keys, audit as audit_routes, auth as auth_routes, cases, commands, customers, directory, factors, health,
    policy, recovery as recovery_routes, risk as risk_routes, staff, templates, tenants,
    verification as verification_routes, webhooks as webhook_routes,
};

/// Bodies the bulk import accepts; every other route takes `ServerConfig::body_max_bytes`.
pub const IMPORT_BODY_MAX_BYTES: usize = 4 * 1024 * 1024;

/// The API's routes and the OpenAPI document describing exactly them.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let import =
        OpenApiRouter::new().routes(routes!(customers::import)).layer(DefaultBodyLimit::max(IMPORT_BODY_MAX_BYTES));
    let (router, doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(openapi_json))
        .routes(routes!(auth_routes::login))
        .routes(routes!(auth_routes::logout))
        .routes(routes!(auth_routes::me))
        .routes(routes!(tenants::list, tenants::create))
        .routes(routes!(tenants::current, tenants::update))
        .routes(routes!(staff::list, staff::create))
        .routes(routes!(api_keys::list, api_keys::create))
        .routes(routes!(api_keys::revoke))
        .routes(routes!(customers::search, customers::create))
        .routes(routes!(customers::get, customers::update, customers::erase))
        .routes(routes!(customers::export))
        .merge(import)
        .routes(routes!(cases::list, cases::create))
        .routes(routes!(cases::get))
        .routes(routes!(cases::timeline))
        .routes(routes!(commands::assign))
        .routes(routes!(commands::escalate))
        .routes(routes!(commands::change_channel))
        .routes(routes!(commands::add_note))
        .routes(routes!(commands::start_identification))
        .routes(routes!(commands::identify))
        .routes(routes!(commands::decide))
        .routes(routes!(commands::request_approval))
        .routes(routes!(commands::approve))
        .routes(routes!(commands::deny))
        .routes(routes!(commands::execute))
        .routes(routes!(commands::retry_action))
        .routes(routes!(commands::complete))
        .routes(routes!(commands::release))
        .routes(routes!(commands::repudiate))
        .routes(routes!(commands::cancel))
        .routes(routes!(recovery_routes::propose, recovery_routes::get))
        .routes(routes!(recovery_routes::confirm))
        .routes(routes!(recovery_routes::recent_changes))
        .routes(routes!(recovery_routes::rollback))
        .routes(routes!(audit_routes::checkpoint))
        .routes(routes!(audit_routes::entry))
        .routes(routes!(audit_routes::inclusion))
        .routes(routes!(audit_routes::consistency))
        .routes(routes!(verification_routes::identification))
        .routes(routes!(verification_routes::status))
        .routes(routes!(verification_routes::send))
        .routes(routes!(verification_routes::code))
        .routes(routes!(verification_routes::totp))
        .routes(routes!(verification_routes::recovery_code))
        .routes(routes!(verification_routes::knowledge))
        .routes(routes!(verification_routes::messages))
        .routes(routes!(risk_routes::get, risk_routes::assess))
        .routes(routes!(risk_routes::observe))
        .routes(routes!(risk_routes::lists))
        .routes(routes!(risk_routes::reload_lists))
        .routes(routes!(risk_routes::score))
        .routes(routes!(policy::current, policy::update))
        .routes(routes!(policy::versions))
        .routes(routes!(policy::version))
        .routes(routes!(templates::list))
        .routes(routes!(templates::set, templates::reset))
        .routes(routes!(factors::set_knowledge))
        .routes(routes!(directory::login))
        .routes(routes!(directory::me))
        .routes(routes!(factors::begin_totp))
        .routes(routes!(factors::confirm_totp))
        .routes(routes!(factors::recovery_codes))
        .routes(routes!(webhook_routes::deliveries))
        .split_for_parts();
    let mut doc = doc;
    openapi::complete_error_responses(&mut doc);
    (router, doc)
}

#[derive(Clone)]
struct OpenApiJson(Arc<String>);

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations", responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
async fn openapi_json(Extension(doc): Extension<OpenApiJson>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], doc.0.as_ref().clone())
}

/// The complete service, ready to serve or to call in tests without a socket.
pub fn router(state: AppState) -> Router {
    telemetry::init_metrics();
    let (api, doc) = api();
    let doc = OpenApiJson(Arc::new(doc.to_pretty_json().unwrap_or_default()));
    let request_id = HeaderName::from_static(telemetry::REQUEST_ID_HEADER);
    let timeout = Duration::from_millis(state.config.request_timeout_ms);
    let body_max = state.config.body_max_bytes;
    api.merge(pages::router())
        .merge(recovery::page::router())
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(Extension(doc))
        .layer(DefaultBodyLimit::max(body_max))
        .layer(
            // Inside `observe`, so a request that times out is counted and logged like any other.
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                    ApiError::Unavailable("the request took longer than the server's time limit".into())
                }))
                .timeout(timeout),
        )
        .layer(axum::middleware::from_fn(telemetry::observe))
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .map_request(telemetry::sanitize_request_id)
                .layer(SetRequestIdLayer::new(request_id.clone(), telemetry::MakeId))
                .layer(TraceLayer::new_for_http().make_span_with(telemetry::request_span))
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(SetResponseHeaderLayer::overriding(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ))
                .layer(SetResponseHeaderLayer::overriding(
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                ))
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("no-store"),
                )),
        )
}

/// A bound, not yet serving, instance of the service.
pub struct Application {
    listener: tokio::net::TcpListener,
    state: AppState,
}

impl Application {
    /// Binds the configured address (port 0 picks a free port).
    pub async fn build(state: AppState) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(state.config.listen).await?;
        Ok(Self { listener, state })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let sweeper = sweeper::spawn(self.state.clone());
        let sequencer = audit::spawn_sequencer(self.state.clone());
        let outbox = outbox::spawn(self.state.clone());
        let actions = recovery::spawn(self.state.clone());
        let lists = risk::spawn_list_reloader(self.state.clone());
        let self_state = self.state.clone();
        let app = router(self.state).into_make_service_with_connect_info::<SocketAddr>();
        let result = axum::serve(self.listener, app).with_graceful_shutdown(shutdown).await;
        for handle in [sweeper, sequencer, outbox, actions, lists].into_iter().flatten() {
            handle.abort();
        }
        // What the last requests wrote goes into the log before the process ends.
        if let Err(e) = audit::sequence_all(&self_state).await {
            tracing::warn!(error = %e, "audit entries left for the next sequencer");
        }
        result
    }
}
