//! Cases end to end over HTTP, on SQLite and on PostgreSQL.

use regain_core::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{customer_json, expect_problem, TestApp};

async fn happy_path(app: &TestApp) {
    let acme = app.tenant("acme").await;
    let key = app.api_key(&acme, "integration").await;
    let customer = app.post_ok(&key, "/api/v1/customers", customer_json("jane"), StatusCode::CREATED).await;
    let agent = app.staff(Some(&acme), Role::Agent).await;
    let agent_token = app.login(&agent).await;

    let case = app
        .post_ok(
            &key,
            "/api/v1/cases",
            json!({"kind": "password_reset", "channel": "phone", "summary": "Locked out"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!((case["state"].as_str(), case["tier"].as_u64()), (Some("open"), Some(1)));
    let id = case["id"].as_str().expect("id").to_owned();
    let path = |command: &str| format!("/api/v1/cases/{id}/{command}");

    let queue = app.get_ok(&agent_token, "/api/v1/cases?state=open&assignee=none").await;
    assert_eq!(queue["items"][0]["id"], id.as_str());
    app.post_ok(&agent_token, &path("assign"), json!({"assignee": agent.id.to_string()}), StatusCode::OK).await;
    let mine = app.get_ok(&agent_token, "/api/v1/cases?assignee=me").await;
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(1));
    app.post_ok(&agent_token, &path("start-identification"), json!({}), StatusCode::OK).await;
    // Staff identify from what the caller claims; naming a record is for client systems.
    expect_problem(
        app.post(&agent_token, &path("identify"), json!({"customer_id": customer["id"]})).await,
        StatusCode::FORBIDDEN,
        "use-identification",
    )
    .await;
    let claim = json!({"full_name": "Jane Doe", "account_number": "AC-jane", "phone": "201-555-0123"});
    let identified = app.post_ok(&agent_token, &path("identification"), claim, StatusCode::OK).await;
    assert_eq!(identified["outcome"], "identified");
    let identified = &identified["case"];
    // SECURITY.md G2: the agent sees masked contact points, never the stored values.
    assert_eq!(identified["customer"]["emails"][0], "j***@e***.com");
    assert_eq!(identified["customer"]["phones"][0], "*** ending 23");
    let text = identified.to_string();
    for secret in ["jane@example.com", "+12015550123", "2015550123", "Jane Q. Doe", "AC-jane"] {
        assert!(!text.contains(secret), "agent view leaks {secret}: {text}");
    }
    app.post_ok(&agent_token, &path("channel"), json!({"channel": "chat"}), StatusCode::OK).await;
    app.verify_by_code(&agent_token, &id, "phone-0").await;
    app.post_ok(
        &agent_token,
        &path("decide"),
        json!({"approve": true, "reason": "code to registered phone"}),
        StatusCode::OK,
    )
    .await;
    app.post_ok(&agent_token, &path("execute"), json!({}), StatusCode::OK).await;
    // Not by hand while Regain is performing the action (issue 6): once the reset link is out,
    // staff may close the case (the customer has not used it, in this test).
    let early = app.post(&agent_token, &path("complete"), json!({})).await;
    crate::support::expect_problem(early, StatusCode::CONFLICT, "action-pending").await;
    assert_eq!(app.perform_actions().await, 1);
    let done = app.post_ok(&agent_token, &path("complete"), json!({}), StatusCode::OK).await;
    assert_eq!(done["state"], "resolved");
    assert_eq!(done["channel"], "chat");
    assert!(done["sla"]["first_response_at"].is_string());

    let timeline = app.get_ok(&agent_token, &format!("/api/v1/cases/{id}/timeline")).await;
    let entries: Vec<(String, String)> = timeline["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| (e["type"].as_str().unwrap_or("").to_owned(), e["state"].as_str().unwrap_or("").to_owned()))
        .collect();
    let expected = [
        ("case.opened", "open"),
        ("case.risk_assessed", "open"),
        ("case.assigned", "open"),
        ("case.state_changed", "identifying"),
        ("case.identification_checked", "identifying"),
        ("case.customer_identified", "identifying"),
        ("case.state_changed", "verifying"),
        ("case.risk_assessed", "verifying"),
        ("case.channel_changed", "verifying"),
        ("case.verification_sent", "verifying"),
        ("case.verification_checked", "verifying"),
        // Assessed again before the decision, with the same answer: nothing more recorded.
        ("case.state_changed", "decided"),
        ("case.state_changed", "executing"),
        ("case.action_queued", "executing"),
        ("case.action_link_sent", "executing"),
        ("case.state_changed", "resolved"),
    ];
    let expected: Vec<(String, String)> = expected.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect();
    assert_eq!(entries, expected);
    let first = &timeline["items"][0];
    assert_eq!(first["actor"]["kind"], "api_key");
    let assessed = &timeline["items"][1];
    assert_eq!(assessed["actor"]["kind"], "system", "Regain itself assesses the risk");
    assert_eq!(assessed["data"]["route"], "proceed");
    let assigned = &timeline["items"][2];
    assert_eq!(
        (assigned["actor"]["kind"].as_str(), assigned["actor"]["role"].as_str()),
        (Some("staff"), Some("agent"))
    );
    assert!(first["at"].as_str().is_some_and(|t| t.ends_with('Z')), "UTC: {}", first["at"]);
    assert_eq!(timeline["items"][11]["data"]["reason"], "code to registered phone");
    assert_eq!(timeline["items"][9]["data"]["destination"], "*** ending 23");
}

#[tokio::test]
async fn a_case_runs_its_course_on_sqlite() {
    happy_path(&TestApp::sqlite().await).await;
}

#[tokio::test]
async fn a_case_runs_its_course_on_postgres() {
    happy_path(&TestApp::postgres().await).await;
}

#[tokio::test]
async fn approvals_need_a_second_supervisor() {
    let app = TestApp::sqlite().await;
    let acme = app.tenant("acme").await;
    let key = app.api_key(&acme, "integration").await;
    let customer = app.post_ok(&key, "/api/v1/customers", customer_json("jane"), StatusCode::CREATED).await;
    let first = app.token(Some(&acme), Role::Supervisor).await;
    let second = app.token(Some(&acme), Role::Supervisor).await;
    let agent = app.token(Some(&acme), Role::Agent).await;
    let case = app
        .post_ok(&agent, "/api/v1/cases", json!({"kind": "mfa_recovery", "channel": "phone"}), StatusCode::CREATED)
        .await;
    assert_eq!(case["approval_required"], true);
    let id = case["id"].as_str().expect("id");
    let path = |c: &str| format!("/api/v1/cases/{id}/{c}");
    app.post_ok(&first, &path("start-identification"), json!({}), StatusCode::OK).await;
    let claim = json!({"full_name": "Jane Q. Doe", "email": "jane@example.com"});
    app.post_ok(&first, &path("identification"), claim, StatusCode::OK).await;
    let _ = &customer;
    // SECURITY.md M1: a lost second factor needs two proofs by different methods.
    app.verify_by_code(&first, id, "email-0").await;
    expect_problem(
        app.post(&first, &path("decide"), json!({"approve": true, "reason": "one proof"})).await,
        StatusCode::CONFLICT,
        "verification-incomplete",
    )
    .await;
    app.verify_by_code(&first, id, "phone-0").await;
    app.post_ok(&first, &path("decide"), json!({"approve": true, "reason": "two proofs"}), StatusCode::OK).await;
    expect_problem(app.post(&first, &path("execute"), json!({})).await, StatusCode::CONFLICT, "approval-required")
        .await;
    app.post_ok(&first, &path("request-approval"), json!({"reason": "lost phone"}), StatusCode::OK).await;
    // SECURITY.md G3: not the requester, not an agent.
    expect_problem(
        app.post(&first, &path("approve"), json!({"reason": "ok"})).await,
        StatusCode::CONFLICT,
        "self-approval",
    )
    .await;
    expect_problem(
        app.post(&agent, &path("approve"), json!({"reason": "ok"})).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let approved = app.post_ok(&second, &path("approve"), json!({"reason": "evidence checked"}), StatusCode::OK).await;
    assert_eq!(approved["state"], "executing");
    // Regain performs the MFA reset itself and completes the case (issue 6).
    assert_eq!(app.perform_actions().await, 1);
    assert_eq!(app.get_ok(&first, &format!("/api/v1/cases/{id}")).await["state"], "resolved");

    // A contact change: its new phone proven by a code, approved, scheduled by Regain, and it
    // cools off before it resolves (and only then takes effect).
    let case = app
        .post_ok(&agent, "/api/v1/cases", json!({"kind": "contact_change", "channel": "phone"}), StatusCode::CREATED)
        .await;
    let id = case["id"].as_str().expect("id");
    let path = |c: &str| format!("/api/v1/cases/{id}/{c}");
    app.post_ok(&first, &path("start-identification"), json!({}), StatusCode::OK).await;
    let claim = json!({"full_name": "Jane Q. Doe", "email": "jane@example.com"});
    app.post_ok(&first, &path("identification"), claim, StatusCode::OK).await;
    app.verify_by_code(&first, id, "email-0").await;
    app.post_ok(&first, &path("decide"), json!({"approve": true, "reason": "code to email"}), StatusCode::OK).await;
    app.post_ok(
        &first,
        &path("contact-change"),
        json!({"phone": "+1 201 555 0199", "replace": false}),
        StatusCode::CREATED,
    )
    .await;
    app.deliver().await;
    let code = crate::support::code_in(&app.sent().last().expect("the code to the new phone").body);
    app.post_ok(&first, &path("contact-change/code"), json!({"code": code}), StatusCode::OK).await;
    app.post_ok(&first, &path("request-approval"), json!({"reason": "new phone"}), StatusCode::OK).await;
    app.post_ok(&second, &path("approve"), json!({"reason": "evidence checked"}), StatusCode::OK).await;
    assert_eq!(app.perform_actions().await, 1);
    let cooling = app.get_ok(&second, &format!("/api/v1/cases/{id}")).await;
    assert_eq!(cooling["state"], "cooling_off");
    expect_problem(app.post(&second, &path("release"), json!({})).await, StatusCode::CONFLICT, "cooling-off").await;
    app.clock.advance(chrono::Duration::hours(25));
    // The clock moved past the sessions' idle time: sign in again.
    let third = app.token(Some(&acme), Role::Supervisor).await;
    let released = app.post_ok(&third, &path("release"), json!({}), StatusCode::OK).await;
    assert_eq!(released["state"], "resolved");
    let change = app.get_ok(&third, &path("contact-change")).await;
    assert_eq!(change["state"], "applied", "{change}");
}

#[tokio::test]
async fn lists_page_by_cursor_and_concurrent_commands_never_lose_a_write() {
    let app = TestApp::sqlite().await;
    let acme = app.tenant("acme").await;
    let key = app.api_key(&acme, "integration").await;
    let mut ids = Vec::new();
    for n in 0..5u32 {
        // Ids are time-ordered to the millisecond; cases opened within one share no order.
        app.clock.advance(chrono::Duration::milliseconds(1));
        let kind = if n.is_multiple_of(2) { "password_reset" } else { "account_unlock" };
        let case =
            app.post_ok(&key, "/api/v1/cases", json!({"kind": kind, "channel": "web"}), StatusCode::CREATED).await;
        ids.push(case["id"].as_str().expect("id").to_owned());
    }
    let mut seen = Vec::new();
    let mut url = "/api/v1/cases?limit=2".to_owned();
    loop {
        let page = app.get_ok(&key, &url).await;
        seen.extend(page["items"].as_array().expect("items").iter().map(|c| c["id"].as_str().unwrap_or("").to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => url = format!("/api/v1/cases?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids, "newest first, each once");
    let unlocks = app.get_ok(&key, "/api/v1/cases?kind=account_unlock").await;
    assert_eq!(unlocks["items"].as_array().map(Vec::len), Some(2));

    let id = &ids[0];
    let path = format!("/api/v1/cases/{id}/notes");
    let notes = (0..10).map(|n| app.post(&key, &path, json!({"text": format!("note {n}")})));
    let responses: Vec<StatusCode> =
        futures::future::join_all(notes).await.iter().map(reqwest::Response::status).collect();
    let ok = responses.iter().filter(|s| **s == StatusCode::OK).count();
    assert!(responses.iter().all(|s| *s == StatusCode::OK || *s == StatusCode::CONFLICT), "{responses:?}");
    let timeline = app.get_ok(&key, &format!("/api/v1/cases/{id}/timeline")).await;
    // Opened and assessed at intake, then the notes.
    assert_eq!(timeline["items"].as_array().map(Vec::len), Some(2 + ok), "every accepted note is there, no other");
    let case: Value = app.get_ok(&key, &format!("/api/v1/cases/{id}")).await;
    assert_eq!(case["version"].as_u64(), Some(2 + ok as u64));
}

#[tokio::test]
async fn staff_work_cases_of_their_tier_and_agents_their_own() {
    let app = TestApp::sqlite().await;
    let acme = app.tenant("acme").await;
    let first = app.staff(Some(&acme), Role::Agent).await;
    let first_token = app.login(&first).await;
    let second = app.token(Some(&acme), Role::Agent).await;
    let supervisor = app.token(Some(&acme), Role::Supervisor).await;
    let case = app
        .post_ok(
            &first_token,
            "/api/v1/cases",
            json!({"kind": "password_reset", "channel": "phone"}),
            StatusCode::CREATED,
        )
        .await;
    let id = case["id"].as_str().expect("id");
    let path = |c: &str| format!("/api/v1/cases/{id}/{c}");
    app.post_ok(&first_token, &path("assign"), json!({"assignee": first.id.to_string()}), StatusCode::OK).await;
    // Another agent cannot work it or take it; a supervisor can.
    expect_problem(
        app.post(&second, &path("start-identification"), json!({})).await,
        StatusCode::CONFLICT,
        "assigned-elsewhere",
    )
    .await;
    app.post_ok(&second, &path("notes"), json!({"text": "caller rang the other line"}), StatusCode::OK).await;
    app.post_ok(&supervisor, &path("escalate"), json!({"tier": 3, "reason": "SIM recently swapped"}), StatusCode::OK)
        .await;
    // At tier 3 it belongs to security analysts.
    let problem = expect_problem(
        app.post(&supervisor, &path("start-identification"), json!({})).await,
        StatusCode::CONFLICT,
        "beyond-tier",
    )
    .await;
    assert!(problem["detail"].as_str().unwrap_or("").contains("tier 3"), "{problem}");
    let analyst = app.token(Some(&acme), Role::SecurityAnalyst).await;
    app.post_ok(&analyst, &path("start-identification"), json!({}), StatusCode::OK).await;
}

#[tokio::test]
async fn closed_cases_are_purged_after_the_tenants_retention_period() {
    // Issue 3 item 7: retention, each purge an audit entry.
    let app = TestApp::sqlite().await;
    let acme = app.tenant("acme").await;
    let admin = app.api_key(&acme, "tenant_admin").await;
    let bad = app
        .call(
            reqwest::Method::PATCH,
            "/api/v1/tenant",
            Some(&admin),
            Some(json!({"settings": {"closed_case_retention_days": 0}})),
        )
        .await;
    expect_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    let patched = app
        .call(
            reqwest::Method::PATCH,
            "/api/v1/tenant",
            Some(&admin),
            Some(json!({"settings": {"closed_case_retention_days": 30}})),
        )
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    let key = app.api_key(&acme, "integration").await;
    let open = |summary: &str| json!({"kind": "password_reset", "channel": "web", "summary": summary});
    let closed = app.post_ok(&key, "/api/v1/cases", open("closed"), StatusCode::CREATED).await;
    let closed_id = closed["id"].as_str().expect("id").to_owned();
    app.post_ok(&key, &format!("/api/v1/cases/{closed_id}/cancel"), json!({"reason": "duplicate"}), StatusCode::OK)
        .await;
    let still_open = app.post_ok(&key, "/api/v1/cases", open("open"), StatusCode::CREATED).await;

    app.clock.advance(chrono::Duration::days(29));
    assert_eq!(regain_server::sweeper::purge(&app.state).await.expect("purge"), 0, "not yet");
    app.clock.advance(chrono::Duration::days(2));
    assert_eq!(regain_server::sweeper::purge(&app.state).await.expect("purge"), 1);
    expect_problem(app.get(&key, &format!("/api/v1/cases/{closed_id}")).await, StatusCode::NOT_FOUND, "not-found")
        .await;
    app.get_ok(&key, &format!("/api/v1/cases/{}", still_open["id"].as_str().expect("id"))).await;
    regain_server::audit::sequence_all(&app.state).await.expect("sequence");
    let auditor = app.token(Some(&acme), Role::Auditor).await;
    let size = app.get_ok(&auditor, "/api/v1/audit/checkpoint").await["size"].as_u64().expect("size");
    let last = app.get_ok(&auditor, &format!("/api/v1/audit/entries/{}", size - 1)).await;
    assert_eq!(
        (last["action"].as_str(), last["case_id"].as_str()),
        (Some("retention.case_purged"), Some(closed_id.as_str()))
    );
}
