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

/// Schemathesis (PyPI), which nobody here wrote, reads the OpenAPI document and sends generated
/// requests — valid ones, and ones broken on purpose — to every operation, then follows the
/// document's links in sequences, as each kind of caller: an integration's API key, every staff
/// role and a signed-in customer. Its checks: no 5xx; every status, content type, header and
/// body as documented; input the document forbids refused; authentication not ignored (the
/// settings, and the checks left out and why, are in `tests/schemathesis.toml`). Seeded, so a
/// failure is reproduced by running the test again (its output names the request as curl).
/// Needs `REGAIN_TEST_PYTHON`'s virtualenv to have schemathesis, as `scripts/test.sh` installs
/// it. Its first run found a struct's fields taken as a JSON array, and statuses missing from
/// the document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_the_api_as_documented_for_every_kind_of_caller() {
    use regain_core::Role;

    let python = std::path::PathBuf::from(std::env::var("REGAIN_TEST_PYTHON").expect(
        "REGAIN_TEST_PYTHON must name the test virtualenv's Python, with schemathesis (scripts/test.sh sets it)",
    ));
    let schemathesis = python.with_file_name("schemathesis");
    let app = TestApp::sqlite().await;
    let acme = app.tenant("acme").await;
    // Something for the operations to find: a customer of the directory, and a case.
    let key = app.api_key(&acme, "integration").await;
    app.post_ok(&key, "/api/v1/customers", crate::support::customer_json("jane"), StatusCode::CREATED).await;
    let case = serde_json::json!({"kind": "password_reset", "channel": "phone"});
    app.post_ok(&key, "/api/v1/cases", case, StatusCode::CREATED).await;
    // Each caller with the path that tells whether it is still signed in.
    let mut callers = vec![("an integration's API key", key, "/api/v1/auth/me")];
    for role in [Role::Agent, Role::Supervisor, Role::SecurityAnalyst, Role::TenantAdmin, Role::Auditor] {
        callers.push((role.as_str(), app.token(Some(&acme), role).await, "/api/v1/auth/me"));
    }
    callers.push(("a deployment admin", app.token(None, Role::DeploymentAdmin).await, "/api/v1/auth/me"));
    let customer = app.customer_session("jane", "an initial password").await;
    callers.push(("a signed-in customer", customer, "/api/v1/directory/acme/me"));

    let schema = format!("{}/api/v1/openapi.json", app.base);
    let scratch = tempfile::tempdir().expect("scratch dir");
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis.toml");
    for (who, token, me) in callers {
        let mut command = tokio::process::Command::new(&schemathesis);
        command
            .current_dir(scratch.path())
            .args(["--no-color", "--config-file", config.to_str().expect("utf-8 path")])
            .args(["run", &schema, "--header", &format!("Authorization: Bearer {token}")])
            .args(["--seed", "20261204", "--workers", "2"])
            .kill_on_drop(true);
        // About 15 s a caller here; a hang fails the test rather than the suite's time limit.
        let run = tokio::time::timeout(std::time::Duration::from_secs(300), command.output()).await;
        let out =
            run.unwrap_or_else(|_| panic!("schemathesis as {who} took over 5 minutes")).expect("run schemathesis");
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "schemathesis as {who} found faults:\n{report}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let generated = report
            .lines()
            .find_map(|l| l.trim().split_once(" generated, ").map(|(n, _)| n.to_owned()))
            .and_then(|n| n.parse::<u32>().ok());
        assert!(generated.is_some_and(|n| n >= 1_000), "schemathesis as {who} ran too few test cases:\n{report}");
        // Signed in all along: the run was made as this caller, not as nobody.
        let still = app.call(Method::GET, me, Some(&token), None).await;
        assert_eq!(still.status(), StatusCode::OK, "{who} was signed out by the run:\n{report}");
    }
}
