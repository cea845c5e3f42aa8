//! The OpenAPI document is complete and true: the router is built from the same annotated
//! handlers as the document (`utoipa_axum::routes!`), so every route is in it; these tests check
//! the other direction — every documented operation is served — and the document's shape.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::TestApp;

async fn document(app: &TestApp) -> Value {
    let response = app.call(Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("json")
}

#[tokio::test]
async fn every_documented_operation_is_served() {
    let app = TestApp::sqlite().await;
    let doc = document(&app).await;
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().expect("paths");
    let mut operations = 0;
    for (path, item) in paths {
        for (method, _) in item.as_object().expect("path item") {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let concrete = path.replace("{id}", "0190aaaa-0000-7000-8000-000000000000").replace("{tenant}", "nobody");
            let response = app.call(method.clone(), &concrete, None, Some(serde_json::json!({}))).await;
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is documented but not routed");
            assert!(!body.contains("no such route"), "{method} {path} is documented but not routed");
            operations += 1;
        }
    }
    assert!(operations >= 44, "only {operations} operations documented");
}

#[tokio::test]
async fn the_document_describes_errors_and_credentials() {
    let app = TestApp::sqlite().await;
    let doc = document(&app).await;
    let public = [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/openapi.json",
        "/api/v1/auth/login",
        "/api/v1/directory/{tenant}/login",
    ];
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            let responses = op["responses"].as_object().expect("responses");
            for param in op["parameters"].as_array().map(Vec::as_slice).unwrap_or_default() {
                let name = param["name"].as_str().unwrap_or("");
                let at = param["in"].as_str().unwrap_or("");
                assert_eq!(
                    at == "path",
                    path.contains(&format!("{{{name}}}")),
                    "{method} {path}: {name} is documented in {at}"
                );
            }
            assert!(!responses.is_empty(), "{method} {path}: no responses");
            if public.contains(&path.as_str()) {
                continue;
            }
            assert!(
                op["security"].as_array().is_some_and(|s| !s.is_empty()),
                "{method} {path}: no security requirement"
            );
            // Every status a client can see is documented (schemathesis checks it too).
            for code in ["401", "403", "503"] {
                assert!(responses.contains_key(code), "{method} {path}: {code} not documented");
            }
            if op.get("requestBody").is_some() {
                for code in ["400", "413", "415"] {
                    assert!(responses.contains_key(code), "{method} {path}: {code} not documented");
                }
                assert_eq!(
                    responses["415"]["content"]["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem"
                );
            }
        }
    }
    let schemes = doc["components"]["securitySchemes"].as_object().expect("security schemes");
    for scheme in ["bearer", "cookie", "customer_bearer"] {
        assert!(schemes.contains_key(scheme), "{scheme}");
    }
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}

#[tokio::test]
async fn operations_come_with_health_metrics_and_request_ids() {
    let app = TestApp::sqlite().await;
    let health = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status(), StatusCode::OK);
    let ready = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status(), StatusCode::OK);
    let id = ready.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert_eq!(id.len(), 36, "a UUID request id: {id:?}");
    assert_eq!(ready.headers().get("referrer-policy").and_then(|v| v.to_str().ok()), Some("no-referrer"));
    let ready: Value = ready.json().await.expect("json");
    assert_eq!(ready["database"], "sqlite");

    let mine = app
        .client
        .get(format!("{}/healthz", app.base))
        .header("x-request-id", "trace-abc.123")
        .send()
        .await
        .expect("send");
    assert_eq!(mine.headers().get("x-request-id").and_then(|v| v.to_str().ok()), Some("trace-abc.123"));
    let hostile =
        app.client.get(format!("{}/healthz", app.base)).header("x-request-id", "a\"}{b").send().await.expect("send");
    assert_ne!(
        hostile.headers().get("x-request-id").and_then(|v| v.to_str().ok()),
        Some("a\"}{b"),
        "L3: hostile ids are replaced"
    );

    let metrics = app.call(Method::GET, "/metrics", None, None).await.text().await.expect("text");
    assert!(metrics.contains("regain_http_requests_total"), "{metrics}");
    assert!(metrics.contains("route=\"/readyz\""), "{metrics}");
}
