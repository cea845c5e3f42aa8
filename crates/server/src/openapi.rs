//! The OpenAPI 3.1 document, generated from the handlers' annotations as the router is built, so
//! a route cannot exist without being documented.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Regain",
        description = "The account recovery desk: cases, identification, verification, risk and recovery across channels. Errors are RFC 9457 problem details (application/problem+json).",
        license(name = "Apache-2.0"),
    ),
    modifiers(&Security),
    tags(
        (name = "cases", description = "Recovery cases"),
        (name = "case commands", description = "Moving a case through its states"),
        (name = "customers", description = "Customer records, provisioned by the tenant's systems"),
        (name = "directory", description = "The built-in customer directory"),
        (name = "auth", description = "Staff sign-in"),
        (name = "staff", description = "Staff accounts"),
        (name = "api keys", description = "Tenant API keys"),
        (name = "tenants", description = "Client companies"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A staff session token (rgs_…) or a tenant API key (rgk_…)"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::SESSION_COOKIE,
                "The staff session cookie set by /api/v1/auth/login",
            ))),
        );
        components.add_security_scheme(
            "customer_bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A customer session token (rgc_…) from the directory's login"))
                    .build(),
            ),
        );
    }
}
