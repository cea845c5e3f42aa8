//! The OpenAPI 3.1 document, generated from the handlers' annotations as the router is built, so
//! a route cannot exist without being documented.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
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
        (name = "risk", description = "Risk scoring and routing: a case's assessment reason by reason, observations, lists"),
        (name = "webhooks", description = "Event webhooks to the tenant's ticketing or CRM: the delivery log"),
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

/// Adds to every operation the error responses that the layers around its handler can give, so
/// the document lists every status a client can see: 400 (a query or body that does not parse),
/// 413 and 415 (a body too large, or not JSON), 401 and 403 (credentials, role) on secured
/// operations, and 503 (database unavailable, time limit) everywhere. All are problem+json.
pub fn complete_error_responses(doc: &mut utoipa::openapi::OpenApi) {
    for item in doc.paths.paths.values_mut() {
        for op in
            [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten()
        {
            let has_body = op.request_body.is_some();
            let has_query = op
                .parameters
                .as_ref()
                .is_some_and(|ps| ps.iter().any(|p| matches!(p.parameter_in, ParameterIn::Query)));
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            let mut add = |code: &str, description: &str| add_problem(op, code, description);
            if has_body || has_query {
                add("400", "The query or body does not parse");
            }
            if has_body {
                add("413", "The body is larger than the limit");
                add("415", "The body is not JSON");
            }
            if secured {
                add("401", "Missing, invalid or expired credentials");
                add("403", "The caller's role does not allow this");
            }
            add("503", "The database is unavailable or the request took too long; retry later");
        }
    }
}

fn add_problem(op: &mut Operation, code: &str, description: &str) {
    if op.responses.responses.contains_key(code) {
        return;
    }
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
    let response = ResponseBuilder::new().description(description).content("application/problem+json", content).build();
    op.responses.responses.insert(code.to_owned(), RefOr::T(response));
}

/// Schemas for the closed vocabularies of `regain_core` (its `string_enum!`s): a wire field stays
/// a `String`, parsed with a precise 422 naming the accepted values, and the document lists
/// those values too, from the same `ALL`, so a client can generate the type and a test tool
/// (schemathesis) sends only them as valid input. Used as `#[schema(value_type = …, inline)]`.
pub mod vocabulary {
    use regain_core::case::{CaseKind as Kinds, CaseState as States, Channel as Channels};
    use regain_core::customer::CustomerStatus as Statuses;
    use regain_core::risk::Observation as Observations;
    use regain_core::Role as Roles;
    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
    use utoipa::openapi::RefOr;

    macro_rules! vocabulary {
        ($($name:ident ($description:literal) = $values:expr;)+) => {$(
            #[doc = $description]
            pub struct $name;
            impl utoipa::PartialSchema for $name {
                fn schema() -> RefOr<Schema> {
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some($values))
                        .description(Some($description))
                        .into()
                }
            }
            impl utoipa::ToSchema for $name {}
        )+};
    }

    fn all<T: Copy>(values: &[T], name: fn(T) -> &'static str) -> Vec<&'static str> {
        values.iter().map(|v| name(*v)).collect()
    }

    vocabulary! {
        CaseKind ("What the case recovers.") = all(Kinds::ALL, Kinds::as_str);
        Channel ("Where the customer reached the desk.") = all(Channels::ALL, Channels::as_str);
        CaseState ("Where the case stands.") = all(States::ALL, States::as_str);
        StaffRole ("A staff role: `deployment_admin` belongs to no tenant, the others to one.")
            = all(&Roles::STAFF, Roles::as_str);
        ApiKeyRole ("An API key's role.") = all(&Roles::API_KEY, Roles::as_str);
        Role ("A staff member's or API key's role.") = all(Roles::ALL, Roles::as_str);
        CustomerStatus ("The customer's account status.") = all(Statuses::ALL, Statuses::as_str);
        Observation ("A social-engineering tell the agent noticed.") = all(Observations::ALL, Observations::as_str);
    }

    /// One state or several, comma-separated (`open,identifying`; spaces around an item are
    /// allowed, as the query trims them).
    pub struct CaseStates;
    impl utoipa::PartialSchema for CaseStates {
        fn schema() -> RefOr<Schema> {
            let one = format!(" *({}) *", all(States::ALL, States::as_str).join("|"));
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(format!("^{one}(,{one})*$")))
                .description(Some("One case state or several, comma-separated."))
                .into()
        }
    }
    impl utoipa::ToSchema for CaseStates {}
}
