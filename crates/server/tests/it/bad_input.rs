//! Bad input gets a precise problem+json 4xx, never a 500, and changes nothing.

use regain_core::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{customer_json, expect_problem, TestApp};

async fn case_count(app: &TestApp, token: &str) -> usize {
    app.get_ok(token, "/api/v1/cases?limit=200").await["items"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn malformed_bodies_are_refused_precisely() {
    let app = TestApp::sqlite().await;
    let acme = app.tenant("acme").await;
    let key = app.api_key(&acme, "integration").await;
    let url = format!("{}/api/v1/cases", app.base);
    let send = |body: String, content_type: Option<&'static str>| {
        let mut request = app.client.post(&url).bearer_auth(&key).body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        request.send()
    };
    let json_ct = Some("application/json");

    let problem = expect_problem(
        send("{\"kind\": ".into(), json_ct).await.expect("send"),
        StatusCode::BAD_REQUEST,
        "bad-request",
    )
    .await;
    assert!(problem["detail"].as_str().unwrap_or("").contains("not valid JSON"), "{problem}");

    let unknown = json!({"kind": "password_reset", "channel": "web", "colour": "red"}).to_string();
    let problem =
        expect_problem(send(unknown, json_ct).await.expect("send"), StatusCode::BAD_REQUEST, "bad-request").await;
    assert!(problem["detail"].as_str().unwrap_or("").contains("colour"), "names the unknown field: {problem}");

    let wrong_type = json!({"kind": 7, "channel": "web"}).to_string();
    expect_problem(send(wrong_type, json_ct).await.expect("send"), StatusCode::BAD_REQUEST, "bad-request").await;

    let valid = json!({"kind": "password_reset", "channel": "web"}).to_string();
    expect_problem(
        send(valid.clone(), None).await.expect("send"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    )
    .await;

    let huge = json!({"kind": "password_reset", "channel": "web", "summary": "x".repeat(70 * 1024)}).to_string();
    expect_problem(send(huge, json_ct).await.expect("send"), StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large").await;

    // A struct's fields as an array (serde would take it), or no object at all (found by
    // schemathesis on PATCH /api/v1/tenant).
    let fields = send(" [\"password_reset\", \"web\", null, null]".into(), json_ct).await.expect("send");
    let problem = expect_problem(fields, StatusCode::BAD_REQUEST, "bad-request").await;
    assert_eq!(problem["detail"], "the body must be a JSON object", "{problem}");
    for not_an_object in ["null", "\"password_reset\"", "[1]"] {
        let response = send(not_an_object.into(), json_ct).await.expect("send");
        let problem = expect_problem(response, StatusCode::BAD_REQUEST, "bad-request").await;
        assert_eq!(problem["detail"], "the body must be a JSON object", "{not_an_object}: {problem}");
    }
    // A +json type is JSON too; a parameter does not matter.
    let plus_json = send(
        json!({"kind": "password_rest", "channel": "web"}).to_string(),
        Some("application/merge-patch+json; charset=utf-8"),
    );
    assert_eq!(plus_json.await.expect("send").status(), StatusCode::UNPROCESSABLE_ENTITY, "parsed, then judged");

    let bad_kind = json!({"kind": "password_rest", "channel": "web"}).to_string();
    let problem =
        expect_problem(send(bad_kind, json_ct).await.expect("send"), StatusCode::UNPROCESSABLE_ENTITY, "validation")
            .await;
    assert_eq!(problem["errors"][0]["field"], "kind");

    assert_eq!(case_count(&app, &key).await, 0, "nothing was written");
    let ok = send(valid, json_ct).await.expect("send");
    assert_eq!(ok.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn invalid_contact_points_are_named_and_nothing_is_half_written() {
    let app = TestApp::sqlite().await;
    let acme = app.tenant("acme").await;
    let key = app.api_key(&acme, "integration").await;

    let mut bad_email = customer_json("jane");
    bad_email["emails"][0]["address"] = json!("jane(at)example.com");
    let problem = expect_problem(
        app.post(&key, "/api/v1/customers", bad_email).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "emails/0");

    let mut bad_phone = customer_json("jane");
    bad_phone["phones"] = json!([{"number": "+12015550123"}, {"number": "555-12"}]);
    let problem = expect_problem(
        app.post(&key, "/api/v1/customers", bad_phone).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "phones/1");
    let found = app.get_ok(&key, "/api/v1/customers?email=jane@example.com").await;
    assert_eq!(found["items"].as_array().map(Vec::len), Some(0), "no half-written record");

    // A national number is read in the tenant's region (US): stored as E.164.
    let created = app.post_ok(&key, "/api/v1/customers", customer_json("jane"), StatusCode::CREATED).await;
    assert_eq!(created["phones"][0]["value"], "+12015550123");
    assert!(created.get("password").is_none(), "the password is never returned");

    let duplicate = customer_json("JANE");
    let problem =
        expect_problem(app.post(&key, "/api/v1/customers", duplicate).await, StatusCode::CONFLICT, "duplicate").await;
    assert_eq!(problem["errors"][0]["field"], "username", "{problem}");

    let problem = expect_problem(
        app.get(&key, "/api/v1/customers?phone=12").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "phone");
    expect_problem(app.get(&key, "/api/v1/customers").await, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    expect_problem(
        app.get(&key, "/api/v1/customers?email=a@b.co&username=x").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    )
    .await;
}

#[tokio::test]
async fn a_bulk_import_stores_the_good_rows_and_reports_the_bad() {
    let app = TestApp::sqlite().await;
    let acme = app.tenant("acme").await;
    let key = app.api_key(&acme, "integration").await;
    let mut bad = customer_json("bad");
    bad["phones"][0]["number"] = json!("not a phone");
    let rows = json!({"customers": [customer_json("ana"), bad, customer_json("bo"), customer_json("ana")]});
    let report = app.post_ok(&key, "/api/v1/customers/import", rows, StatusCode::OK).await;
    assert_eq!((report["created"].as_u64(), report["failed"].as_u64()), (Some(2), Some(2)), "{report}");
    assert_eq!(report["rows"][1]["error"]["errors"][0]["field"], "phones/0");
    assert_eq!(report["rows"][3]["error"]["type"], "urn:regain:problem:duplicate");
    for username in ["ana", "bo"] {
        let found = app.get_ok(&key, &format!("/api/v1/customers?username={username}")).await;
        assert_eq!(found["items"].as_array().map(Vec::len), Some(1), "{username}");
    }
}

#[tokio::test]
async fn unknown_ids_tenants_routes_and_methods() {
    let app = TestApp::sqlite().await;
    let acme = app.tenant("acme").await;
    let key = app.api_key(&acme, "tenant_admin").await;
    let missing = "0190aaaa-0000-7000-8000-000000000000";
    for path in [
        format!("/api/v1/cases/{missing}"),
        format!("/api/v1/cases/{missing}/timeline"),
        "/api/v1/cases/not-a-uuid".to_owned(),
        format!("/api/v1/customers/{missing}"),
        "/api/v1/nowhere".to_owned(),
    ] {
        expect_problem(app.get(&key, &path).await, StatusCode::NOT_FOUND, "not-found").await;
    }
    expect_problem(
        app.post(&key, &format!("/api/v1/cases/{missing}/cancel"), json!({"reason": "x"})).await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    expect_problem(
        app.call(Method::DELETE, &format!("/api/v1/api-keys/{missing}"), Some(&key), None).await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    expect_problem(
        app.call(
            Method::POST,
            "/api/v1/directory/no-such-tenant/login",
            None,
            Some(json!({"username": "a", "password": "b"})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    expect_problem(
        app.call(Method::PUT, "/api/v1/cases", Some(&key), None).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
    )
    .await;

    let admin = app.token(None, Role::DeploymentAdmin).await;
    let body = json!({"email": "x@acme.test", "display_name": "X", "role": "agent", "password": "a long enough password", "tenant": "no-such-tenant"});
    let problem =
        expect_problem(app.post(&admin, "/api/v1/staff", body).await, StatusCode::UNPROCESSABLE_ENTITY, "validation")
            .await;
    assert_eq!(problem["errors"][0]["field"], "tenant");
}

#[tokio::test]
async fn bad_query_parameters_and_wrong_states() {
    let app = TestApp::sqlite().await;
    let acme = app.tenant("acme").await;
    let key = app.api_key(&acme, "integration").await;
    expect_problem(app.get(&key, "/api/v1/cases?limit=abc").await, StatusCode::BAD_REQUEST, "bad-request").await;
    expect_problem(app.get(&key, "/api/v1/cases?limit=0").await, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    expect_problem(
        app.get(&key, "/api/v1/cases?state=open,sleeping").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    )
    .await;
    expect_problem(app.get(&key, "/api/v1/cases?cursor=nope").await, StatusCode::UNPROCESSABLE_ENTITY, "validation")
        .await;
    expect_problem(app.get(&key, "/api/v1/cases?bogus=1").await, StatusCode::BAD_REQUEST, "bad-request").await;

    let case = app
        .post_ok(&key, "/api/v1/cases", json!({"kind": "account_unlock", "channel": "chat"}), StatusCode::CREATED)
        .await;
    let id = case["id"].as_str().expect("id");
    let problem = expect_problem(
        app.post(&key, &format!("/api/v1/cases/{id}/execute"), json!({})).await,
        StatusCode::CONFLICT,
        "wrong-state",
    )
    .await;
    assert!(problem["detail"].as_str().unwrap_or("").contains("open"), "{problem}");
    expect_problem(
        app.post(&key, &format!("/api/v1/cases/{id}/escalate"), json!({"tier": 9, "reason": "x"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    )
    .await;
    let timeline = app.get_ok(&key, &format!("/api/v1/cases/{id}/timeline")).await;
    // Opened and assessed at intake; the refused commands leave no trace.
    assert_eq!(timeline["items"].as_array().map(Vec::len), Some(2), "refused commands leave no trace in the timeline");
}
