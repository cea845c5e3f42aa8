//! Least privilege and tenant isolation (SECURITY.md G6): the role × route matrix, written out
//! here by hand (not derived from the code under test), and cross-tenant requests answered 404.

use regain_core::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{customer_json, expect_problem, TestApp};

const AGENT: u8 = 1;
const SUPERVISOR: u8 = 2;
const ANALYST: u8 = 4;
const TENANT_ADMIN: u8 = 8;
const AUDITOR: u8 = 16;
const DEPLOYMENT_ADMIN: u8 = 32;
const INTEGRATION: u8 = 64;
const CASE_WORKERS: u8 = AGENT | SUPERVISOR | ANALYST | TENANT_ADMIN | INTEGRATION;
const TENANT_ROLES: u8 = AGENT | SUPERVISOR | ANALYST | TENANT_ADMIN | AUDITOR | INTEGRATION;

const ROLES: [(Role, u8); 7] = [
    (Role::Agent, AGENT),
    (Role::Supervisor, SUPERVISOR),
    (Role::SecurityAnalyst, ANALYST),
    (Role::TenantAdmin, TENANT_ADMIN),
    (Role::Auditor, AUDITOR),
    (Role::DeploymentAdmin, DEPLOYMENT_ADMIN),
    (Role::Integration, INTEGRATION),
];

struct Route {
    method: Method,
    path: &'static str,
    body: Option<Value>,
    allowed: u8,
}

fn route(method: Method, path: &'static str, body: Option<Value>, allowed: u8) -> Route {
    Route { method, path, body, allowed }
}

fn matrix() -> Vec<Route> {
    let reason = || Some(json!({"reason": "checked"}));
    vec![
        route(Method::GET, "/api/v1/tenants", None, DEPLOYMENT_ADMIN),
        route(Method::POST, "/api/v1/tenants", Some(json!({"slug": "zeta", "display_name": "Zeta"})), DEPLOYMENT_ADMIN),
        route(Method::GET, "/api/v1/tenant", None, TENANT_ROLES),
        route(Method::PATCH, "/api/v1/tenant", Some(json!({"display_name": "Acme"})), TENANT_ADMIN),
        route(Method::GET, "/api/v1/staff", None, SUPERVISOR | ANALYST | TENANT_ADMIN | AUDITOR | DEPLOYMENT_ADMIN),
        route(
            Method::POST,
            "/api/v1/staff",
            Some(
                json!({"email": "new@x.test", "display_name": "N", "role": "agent", "password": "long enough password"}),
            ),
            TENANT_ADMIN | DEPLOYMENT_ADMIN,
        ),
        route(Method::GET, "/api/v1/api-keys", None, TENANT_ADMIN),
        route(Method::POST, "/api/v1/api-keys", Some(json!({"name": "crm"})), TENANT_ADMIN),
        route(Method::DELETE, "/api/v1/api-keys/{missing}", None, TENANT_ADMIN),
        route(Method::POST, "/api/v1/customers", Some(customer_json("matrix")), TENANT_ADMIN | INTEGRATION),
        route(Method::POST, "/api/v1/customers/import", Some(json!({"customers": []})), TENANT_ADMIN | INTEGRATION),
        route(Method::GET, "/api/v1/customers?username=jane", None, TENANT_ADMIN | INTEGRATION),
        route(Method::GET, "/api/v1/customers/{customer}", None, TENANT_ADMIN | INTEGRATION),
        route(Method::GET, "/api/v1/customers/{customer}/export", None, TENANT_ADMIN | INTEGRATION),
        route(Method::DELETE, "/api/v1/customers/{missing}", None, TENANT_ADMIN | INTEGRATION),
        route(
            Method::PATCH,
            "/api/v1/customers/{customer}",
            Some(json!({"status": "active"})),
            TENANT_ADMIN | INTEGRATION,
        ),
        route(Method::POST, "/api/v1/cases", Some(json!({"kind": "password_reset", "channel": "web"})), CASE_WORKERS),
        route(Method::GET, "/api/v1/cases", None, TENANT_ROLES),
        route(Method::GET, "/api/v1/cases/{case}", None, TENANT_ROLES),
        route(Method::GET, "/api/v1/cases/{case}/timeline", None, TENANT_ROLES),
        route(Method::POST, "/api/v1/cases/{case}/notes", Some(json!({"text": "called back"})), CASE_WORKERS),
        route(Method::POST, "/api/v1/cases/{case}/assign", Some(json!({"assignee": null})), CASE_WORKERS),
        route(Method::POST, "/api/v1/cases/{case}/escalate", Some(json!({"tier": 2, "reason": "x"})), CASE_WORKERS),
        route(Method::POST, "/api/v1/cases/{case}/channel", Some(json!({"channel": "chat"})), CASE_WORKERS),
        route(Method::POST, "/api/v1/cases/{case}/start-identification", None, CASE_WORKERS),
        // Staff identify from claims (`identification`); naming a record is for client systems.
        route(Method::POST, "/api/v1/cases/{case}/identify", Some(json!({"customer_id": "{customer}"})), INTEGRATION),
        route(Method::POST, "/api/v1/cases/{case}/decide", Some(json!({"approve": true, "reason": "x"})), CASE_WORKERS),
        route(Method::POST, "/api/v1/cases/{case}/request-approval", reason(), CASE_WORKERS),
        route(Method::POST, "/api/v1/cases/{case}/approve", reason(), SUPERVISOR | ANALYST),
        route(Method::POST, "/api/v1/cases/{case}/deny", reason(), SUPERVISOR | ANALYST),
        route(Method::POST, "/api/v1/cases/{case}/execute", None, CASE_WORKERS),
        route(Method::POST, "/api/v1/cases/{case}/complete", Some(json!({})), CASE_WORKERS),
        route(Method::POST, "/api/v1/cases/{case}/retry-action", None, CASE_WORKERS),
        route(
            Method::POST,
            "/api/v1/cases/{case}/contact-change",
            Some(json!({"email": "x@example.org"})),
            CASE_WORKERS,
        ),
        route(Method::GET, "/api/v1/cases/{case}/contact-change", None, TENANT_ROLES),
        route(Method::POST, "/api/v1/cases/{case}/contact-change/code", Some(json!({"code": "123456"})), CASE_WORKERS),
        route(Method::GET, "/api/v1/cases/{case}/recent-changes", None, CASE_WORKERS),
        route(Method::POST, "/api/v1/cases/{case}/rollback", Some(json!({"changes": ["totp"]})), CASE_WORKERS),
        route(Method::GET, "/api/v1/webhooks/deliveries", None, TENANT_ROLES),
        route(Method::POST, "/api/v1/cases/{case}/release", None, CASE_WORKERS),
        route(Method::POST, "/api/v1/cases/{case}/repudiate", reason(), CASE_WORKERS),
        route(Method::POST, "/api/v1/cases/{case}/cancel", reason(), CASE_WORKERS),
        route(
            Method::POST,
            "/api/v1/cases/{case}/identification",
            Some(json!({"full_name": "Jane Doe", "email": "jane@example.com"})),
            CASE_WORKERS,
        ),
        route(Method::GET, "/api/v1/cases/{case}/verification", None, TENANT_ROLES),
        route(Method::GET, "/api/v1/cases/{case}/messages", None, TENANT_ROLES),
        route(
            Method::POST,
            "/api/v1/cases/{case}/verification/send",
            Some(json!({"contact": "email-0"})),
            CASE_WORKERS,
        ),
        route(Method::POST, "/api/v1/cases/{case}/verification/code", Some(json!({"code": "123456"})), CASE_WORKERS),
        route(Method::POST, "/api/v1/cases/{case}/verification/totp", Some(json!({"code": "123456"})), CASE_WORKERS),
        route(
            Method::POST,
            "/api/v1/cases/{case}/verification/recovery-code",
            Some(json!({"code": "ABCD-EFGH-IJKL-MNOP"})),
            CASE_WORKERS,
        ),
        route(
            Method::POST,
            "/api/v1/cases/{case}/verification/knowledge",
            Some(json!({"question": "first_pet", "answer": "rex"})),
            CASE_WORKERS,
        ),
        route(Method::GET, "/api/v1/cases/{case}/risk", None, TENANT_ROLES),
        route(Method::POST, "/api/v1/cases/{case}/risk", None, CASE_WORKERS),
        route(Method::POST, "/api/v1/cases/{case}/observations", Some(json!({"tells": ["urgency"]})), CASE_WORKERS),
        route(Method::GET, "/api/v1/risk/lists", None, TENANT_ROLES),
        route(Method::POST, "/api/v1/risk/lists/reload", None, TENANT_ADMIN),
        route(
            Method::POST,
            "/api/v1/risk/score",
            Some(json!({"snapshot": {"kind": "password_reset", "channel": "web", "now": "2026-11-02T14:00:00Z"}})),
            TENANT_ADMIN,
        ),
        route(Method::GET, "/api/v1/policy", None, TENANT_ROLES),
        route(Method::PUT, "/api/v1/policy", Some(json!({"base_version": null, "policy": {}})), TENANT_ADMIN),
        route(Method::GET, "/api/v1/policy/versions", None, TENANT_ROLES),
        route(Method::GET, "/api/v1/policy/versions/1", None, TENANT_ROLES),
        route(Method::GET, "/api/v1/templates", None, TENANT_ROLES),
        route(
            Method::PUT,
            "/api/v1/templates/verification_code/sms",
            Some(json!({"body": "{{code}} is your code"})),
            TENANT_ADMIN,
        ),
        route(Method::DELETE, "/api/v1/templates/verification_code/email", None, TENANT_ADMIN),
        route(
            Method::PUT,
            "/api/v1/customers/{customer}/knowledge",
            Some(json!({"question": "first_pet", "answer": "Rex"})),
            TENANT_ADMIN | INTEGRATION,
        ),
        route(Method::GET, "/api/v1/auth/me", None, 127),
        route(Method::GET, "/api/v1/audit/checkpoint", None, 127),
        route(Method::GET, "/api/v1/audit/entries/0", None, AUDITOR | ANALYST | DEPLOYMENT_ADMIN),
        route(Method::GET, "/api/v1/audit/proofs/inclusion?seq=0", None, 127),
        route(Method::GET, "/api/v1/audit/proofs/consistency?from=1", None, 127),
    ]
}

#[tokio::test]
async fn every_role_on_every_route() {
    let app = TestApp::sqlite().await;
    let acme = app.tenant("acme").await;
    let key = app.api_key(&acme, "integration").await;
    let customer = app.post_ok(&key, "/api/v1/customers", customer_json("jane"), StatusCode::CREATED).await;
    let case = app
        .post_ok(&key, "/api/v1/cases", json!({"kind": "password_reset", "channel": "phone"}), StatusCode::CREATED)
        .await;
    let fill = |path: &str| {
        path.replace("{case}", case["id"].as_str().unwrap_or(""))
            .replace("{customer}", customer["id"].as_str().unwrap_or(""))
            .replace("{missing}", "0190aaaa-0000-7000-8000-000000000000")
    };
    let mut tokens = Vec::new();
    for (role, bit) in ROLES {
        let tenant = (role != Role::DeploymentAdmin).then_some(&acme);
        tokens.push((role, bit, app.token(tenant, role).await));
    }
    let mut checked = 0;
    for route in matrix() {
        let path = fill(route.path);
        let body = route.body.as_ref().map(|b| serde_json::from_str(&fill(&b.to_string())).unwrap_or(Value::Null));
        let anonymous = app.call(route.method.clone(), &path, None, body.clone()).await;
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "anonymous {} {path}", route.method);
        for (role, bit, token) in &tokens {
            let response = app.call(route.method.clone(), &path, Some(token), body.clone()).await;
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            if route.allowed & bit != 0 {
                assert!(
                    status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED && !status.is_server_error(),
                    "{role} should be allowed {} {path}, got {status}: {text}",
                    route.method
                );
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{role} must be refused {} {path}: {text}", route.method);
            }
            checked += 1;
        }
    }
    assert_eq!(checked, matrix().len() * ROLES.len());
}

#[tokio::test]
async fn another_tenants_records_are_not_found() {
    let app = TestApp::sqlite().await;
    let acme = app.tenant("acme").await;
    let beta = app.tenant("beta").await;
    let acme_key = app.api_key(&acme, "tenant_admin").await;
    let customer = app.post_ok(&acme_key, "/api/v1/customers", customer_json("jane"), StatusCode::CREATED).await;
    let case = app
        .post_ok(&acme_key, "/api/v1/cases", json!({"kind": "password_reset", "channel": "phone"}), StatusCode::CREATED)
        .await;
    let case_id = case["id"].as_str().expect("id");
    let customer_id = customer["id"].as_str().expect("id");

    let beta_key = app.api_key(&beta, "tenant_admin").await;
    let beta_agent = app.token(Some(&beta), Role::Agent).await;
    for token in [&beta_key, &beta_agent] {
        expect_problem(app.get(token, &format!("/api/v1/cases/{case_id}")).await, StatusCode::NOT_FOUND, "not-found")
            .await;
        expect_problem(
            app.get(token, &format!("/api/v1/cases/{case_id}/timeline")).await,
            StatusCode::NOT_FOUND,
            "not-found",
        )
        .await;
        expect_problem(
            app.post(token, &format!("/api/v1/cases/{case_id}/cancel"), json!({"reason": "mine now"})).await,
            StatusCode::NOT_FOUND,
            "not-found",
        )
        .await;
        let listed = app.get_ok(token, "/api/v1/cases").await;
        assert_eq!(listed["items"].as_array().map(Vec::len), Some(0));
    }
    expect_problem(
        app.get(&beta_key, &format!("/api/v1/customers/{customer_id}")).await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    let found = app.get_ok(&beta_key, "/api/v1/customers?email=jane@example.com").await;
    assert_eq!(found["items"].as_array().map(Vec::len), Some(0));

    // Identifying another tenant's customer, or assigning another tenant's agent, is refused.
    let beta_case = app
        .post_ok(&beta_key, "/api/v1/cases", json!({"kind": "password_reset", "channel": "web"}), StatusCode::CREATED)
        .await;
    let beta_case_id = beta_case["id"].as_str().expect("id");
    app.post_ok(&beta_key, &format!("/api/v1/cases/{beta_case_id}/start-identification"), json!({}), StatusCode::OK)
        .await;
    expect_problem(
        app.post(&beta_key, &format!("/api/v1/cases/{beta_case_id}/identify"), json!({"customer_id": customer_id}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    )
    .await;
    let acme_agent = app.staff(Some(&acme), Role::Agent).await;
    expect_problem(
        app.post(
            &beta_key,
            &format!("/api/v1/cases/{beta_case_id}/assign"),
            json!({"assignee": acme_agent.id.to_string()}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    )
    .await;
    // Beta's case is untouched by any of it; acme's case too.
    let acme_timeline = app.get_ok(&acme_key, &format!("/api/v1/cases/{case_id}/timeline")).await;
    // Opened, and assessed at intake (issue 5).
    assert_eq!(acme_timeline["items"].as_array().map(Vec::len), Some(2));
}
