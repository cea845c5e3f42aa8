//! The audit log over the API (SECURITY.md L1, L4): every change is an entry; checkpoints are
//! signed notes that verify with the published key; proofs verify with the RFC 9162 algorithm.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use regain_core::Role;
use regain_merkle::note::{open, Checkpoint, NoteVerifier};
use regain_merkle::{verify_consistency, verify_inclusion};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{customer_json, expect_problem, TestApp};

fn b64(v: &Value) -> Vec<u8> {
    B64.decode(v.as_str().expect("base64 string")).expect("base64")
}

#[tokio::test]
async fn changes_are_logged_checkpointed_and_provable() {
    let app = TestApp::sqlite().await;
    let acme = app.tenant("acme").await;
    let beta = app.tenant("beta").await;
    let key = app.api_key(&acme, "integration").await;
    app.post_ok(&key, "/api/v1/customers", customer_json("jane"), StatusCode::CREATED).await;
    let case = app
        .post_ok(&key, "/api/v1/cases", json!({"kind": "password_reset", "channel": "phone"}), StatusCode::CREATED)
        .await;
    regain_server::audit::sequence_all(&app.state).await.expect("sequence");
    let auditor = app.token(Some(&acme), Role::Auditor).await;

    let first = app.get_ok(&auditor, "/api/v1/audit/checkpoint").await;
    let verifier = NoteVerifier::parse(first["verifier_key"].as_str().expect("key")).expect("verifier key");
    let body = open(first["note"].as_str().expect("note"), &verifier).expect("a checkpoint signed by the log's key");
    let signed = Checkpoint::parse_body(&body).expect("checkpoint body");
    assert_eq!(signed.origin, "test.regain/audit");
    assert_eq!(Some(signed.size), first["size"].as_u64());
    assert_eq!(signed.root.to_vec(), b64(&first["root"]));

    // Entries name who, what, when and which case; none holds the customer's personal data.
    let size = signed.size;
    let mut opened = None;
    for seq in 0..size {
        let response = app.get(&auditor, &format!("/api/v1/audit/entries/{seq}")).await;
        if response.status() == StatusCode::NOT_FOUND {
            continue; // another tenant's (beta's creation) or the deployment's
        }
        let entry: Value = response.json().await.expect("json");
        let text = entry["entry"].as_str().expect("text");
        for personal in ["jane@example.com", "+12015550123", "Jane Q. Doe", "an initial password"] {
            assert!(!text.contains(personal), "entry {seq} holds {personal}: {text}");
        }
        if entry["action"] == "case.opened" {
            opened = Some((seq, entry));
        }
    }
    let (seq, entry) = opened.expect("the case's opening is logged");
    assert_eq!(entry["case_id"], case["id"]);
    let parsed: Value = serde_json::from_str(entry["entry"].as_str().expect("text")).expect("canonical JSON");
    assert!(parsed["actor"].as_str().is_some_and(|a| a.starts_with("api_key:")), "{parsed}");
    assert!(parsed["at"].as_str().is_some_and(|t| t.ends_with('Z')));

    let proof = app.get_ok(&auditor, &format!("/api/v1/audit/proofs/inclusion?seq={seq}")).await;
    let hashes: Vec<Vec<u8>> = proof["proof"].as_array().expect("proof").iter().map(b64).collect();
    assert_eq!(b64(&proof["leaf_hash"]), b64(&entry["leaf_hash"]));
    verify_inclusion(&b64(&proof["leaf_hash"]), seq, size, &hashes, &signed.root).expect("inclusion proof verifies");

    // More changes, a later checkpoint that provably extends the first.
    app.post_ok(
        &key,
        &format!("/api/v1/cases/{}/notes", case["id"].as_str().expect("id")),
        json!({"text": "called back"}),
        StatusCode::OK,
    )
    .await;
    regain_server::audit::sequence_all(&app.state).await.expect("sequence");
    let second = app.get_ok(&auditor, "/api/v1/audit/checkpoint").await;
    let later = second["size"].as_u64().expect("size");
    assert!(later > size);
    let consistency = app.get_ok(&auditor, &format!("/api/v1/audit/proofs/consistency?from={size}&to={later}")).await;
    let hashes: Vec<Vec<u8>> = consistency["proof"].as_array().expect("proof").iter().map(b64).collect();
    verify_consistency(size, later, &hashes, &signed.root, &b64(&second["root"])).expect("consistency proof verifies");

    // Another tenant's auditor sees none of acme's entries; an agent none at all.
    let beta_auditor = app.token(Some(&beta), Role::Auditor).await;
    expect_problem(
        app.get(&beta_auditor, &format!("/api/v1/audit/entries/{seq}")).await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    let agent = app.token(Some(&acme), Role::Agent).await;
    expect_problem(app.get(&agent, &format!("/api/v1/audit/entries/{seq}")).await, StatusCode::FORBIDDEN, "forbidden")
        .await;
}

#[tokio::test]
async fn bad_proof_requests_are_refused_precisely() {
    let app = TestApp::sqlite().await;
    let acme = app.tenant("acme").await;
    let auditor = app.token(Some(&acme), Role::Auditor).await;
    regain_server::audit::sequence_all(&app.state).await.expect("sequence");
    let size = app.get_ok(&auditor, "/api/v1/audit/checkpoint").await["size"].as_u64().expect("size");
    // A size no checkpoint was signed at (the background sequencer may have signed some on the
    // way, when the machine is slow).
    let mut unsigned = 1;
    while unsigned < size && app.state.store.checkpoint(unsigned).await.expect("checkpoint").is_some() {
        unsigned += 1;
    }
    assert!(unsigned < size, "every size up to {size} has a checkpoint");
    for (path, status, code) in [
        (format!("/api/v1/audit/proofs/inclusion?seq={size}"), StatusCode::NOT_FOUND, "not-found"),
        (format!("/api/v1/audit/proofs/inclusion?seq=0&size={}", size + 7), StatusCode::NOT_FOUND, "not-found"),
        ("/api/v1/audit/proofs/inclusion?seq=-1".to_owned(), StatusCode::BAD_REQUEST, "bad-request"),
        ("/api/v1/audit/proofs/inclusion".to_owned(), StatusCode::BAD_REQUEST, "bad-request"),
        (
            format!("/api/v1/audit/proofs/consistency?from={}&to={size}", size + 1),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        (
            format!("/api/v1/audit/proofs/consistency?from=999&to={size}"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        (format!("/api/v1/audit/proofs/consistency?from={unsigned}"), StatusCode::NOT_FOUND, "not-found"),
        ("/api/v1/audit/entries/99999".to_owned(), StatusCode::NOT_FOUND, "not-found"),
        ("/api/v1/audit/entries/not-a-number".to_owned(), StatusCode::NOT_FOUND, "not-found"),
    ] {
        expect_problem(app.get(&auditor, &path).await, status, code).await;
    }
}

#[tokio::test]
async fn a_customer_gets_everything_held_about_them_and_the_export_is_logged() {
    // GDPR Art. 15.
    let app = TestApp::sqlite().await;
    let acme = app.tenant("acme").await;
    let beta = app.tenant("beta").await;
    let key = app.api_key(&acme, "integration").await;
    let jane = app.post_ok(&key, "/api/v1/customers", customer_json("jane"), StatusCode::CREATED).await;
    let id = jane["id"].as_str().expect("id");
    for password in ["an initial password", "not the password"] {
        app.call(
            reqwest::Method::POST,
            "/api/v1/directory/acme/login",
            None,
            Some(json!({"username": "jane", "password": password})),
        )
        .await;
    }
    let case = app
        .post_ok(&key, "/api/v1/cases", json!({"kind": "account_unlock", "channel": "chat"}), StatusCode::CREATED)
        .await;
    let case_id = case["id"].as_str().expect("id");
    app.post_ok(&key, &format!("/api/v1/cases/{case_id}/start-identification"), json!({}), StatusCode::OK).await;
    app.post_ok(&key, &format!("/api/v1/cases/{case_id}/identify"), json!({"customer_id": id}), StatusCode::OK).await;

    let export = app.get_ok(&key, &format!("/api/v1/customers/{id}/export")).await;
    assert_eq!(export["customer"]["emails"][0]["value"], "jane@example.com");
    assert_eq!(export["cases"].as_array().map(Vec::len), Some(1));
    assert_eq!(export["cases"][0]["case"]["id"], case_id);
    assert_eq!(export["cases"][0]["timeline"].as_array().map(Vec::len), Some(5), "with its intake risk assessment");
    let logins: Vec<bool> =
        export["logins"].as_array().expect("logins").iter().map(|l| l["success"].as_bool().unwrap_or(true)).collect();
    assert_eq!(logins, [false, true], "newest first");
    let actions: Vec<&str> =
        export["audit_entries"].as_array().expect("entries").iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(
        actions,
        ["customer.created", "directory.login", "directory.login", "case.customer_identified", "case.state_changed"]
    );
    assert!(!export.to_string().contains("an initial password"));

    // The export is itself on record, and shows in the next one.
    let again = app.get_ok(&key, &format!("/api/v1/customers/{id}/export")).await;
    let last = again["audit_entries"].as_array().and_then(|e| e.last()).expect("entries");
    assert_eq!(last["action"], "customer.exported");
    assert!(last["entry"].as_str().is_some_and(|t| t.contains("api_key:")));

    let beta_key = app.api_key(&beta, "tenant_admin").await;
    expect_problem(
        app.get(&beta_key, &format!("/api/v1/customers/{id}/export")).await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
}

#[tokio::test]
async fn an_erased_customer_is_gone_and_the_log_still_proves_itself() {
    // GDPR Art. 17; issue 3 item 7.
    let app = TestApp::sqlite().await;
    let acme = app.tenant("acme").await;
    let key = app.api_key(&acme, "integration").await;
    let jane = app.post_ok(&key, "/api/v1/customers", customer_json("jane"), StatusCode::CREATED).await;
    let id = jane["id"].as_str().expect("id");
    let case = app
        .post_ok(
            &key,
            "/api/v1/cases",
            json!({"kind": "account_unlock", "channel": "chat", "summary": "Jane cannot sign in"}),
            StatusCode::CREATED,
        )
        .await;
    let case_id = case["id"].as_str().expect("id");
    let path = |action: &str| format!("/api/v1/cases/{case_id}/{action}");
    app.post_ok(&key, &path("start-identification"), json!({}), StatusCode::OK).await;
    app.post_ok(&key, &path("identify"), json!({"customer_id": id}), StatusCode::OK).await;
    app.post_ok(&key, &path("notes"), json!({"text": "Jane's dog is called Rex"}), StatusCode::OK).await;

    // Refused while her case is open, with nothing changed.
    let open = app.call(reqwest::Method::DELETE, &format!("/api/v1/customers/{id}"), Some(&key), None).await;
    let problem = expect_problem(open, StatusCode::CONFLICT, "precondition").await;
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("still open")), "{problem}");
    app.get_ok(&key, &format!("/api/v1/customers/{id}")).await;

    app.post_ok(&key, &path("cancel"), json!({"reason": "Jane called back"}), StatusCode::OK).await;
    let erased = app.call(reqwest::Method::DELETE, &format!("/api/v1/customers/{id}"), Some(&key), None).await;
    assert_eq!(erased.status(), StatusCode::OK);
    let erased: Value = erased.json().await.expect("json");
    assert_eq!((erased["customer_id"].as_str(), erased["cases_erased"].as_u64()), (Some(id), Some(1)));

    expect_problem(app.get(&key, &format!("/api/v1/customers/{id}")).await, StatusCode::NOT_FOUND, "not-found").await;
    let found = app.get_ok(&key, "/api/v1/customers?email=jane@example.com").await;
    assert_eq!(found["items"].as_array().map(Vec::len), Some(0));
    let again = app.call(reqwest::Method::DELETE, &format!("/api/v1/customers/{id}"), Some(&key), None).await;
    expect_problem(again, StatusCode::NOT_FOUND, "not-found").await;

    // The case stays; its timeline shows the free text as erased, the rest as it was.
    let kept = app.get_ok(&key, &format!("/api/v1/cases/{case_id}")).await;
    assert_eq!((kept["state"].as_str(), kept["summary"].as_str()), (Some("cancelled"), None));
    let timeline = app.get_ok(&key, &path("timeline")).await;
    let items = timeline["items"].as_array().expect("items");
    let note = items.iter().find(|e| e["type"] == "case.note_added").expect("note");
    assert_eq!((note["erased"].as_bool(), &note["data"]["text"]), (Some(true), &Value::Null));
    assert_eq!(items[0]["erased"].as_bool(), Some(false));
    assert!(!timeline.to_string().contains("Rex") && !timeline.to_string().contains("called back"));

    // Every entry is still in the log, with the erasure, and every inclusion proof verifies.
    regain_server::audit::sequence_all(&app.state).await.expect("sequence");
    let auditor = app.token(Some(&acme), Role::Auditor).await;
    let checkpoint = app.get_ok(&auditor, "/api/v1/audit/checkpoint").await;
    let size = checkpoint["size"].as_u64().expect("size");
    let root = b64(&checkpoint["root"]);
    let mut actions = Vec::new();
    for seq in 0..size {
        let response = app.get(&auditor, &format!("/api/v1/audit/entries/{seq}")).await;
        if response.status() == StatusCode::NOT_FOUND {
            continue; // the deployment's own entries
        }
        let entry: Value = response.json().await.expect("json");
        let text = entry["entry"].as_str().expect("entry").to_owned();
        assert!(!text.contains("Rex") && !text.contains("jane@example.com"), "{text}");
        actions.push(entry["action"].as_str().expect("action").to_owned());
        let proof = app.get_ok(&auditor, &format!("/api/v1/audit/proofs/inclusion?seq={seq}&size={size}")).await;
        let hashes: Vec<Vec<u8>> = proof["proof"].as_array().expect("proof").iter().map(b64).collect();
        let leaf = regain_merkle::leaf_hash(text.as_bytes());
        let root: [u8; 32] = root.clone().try_into().expect("32 bytes");
        verify_inclusion(&leaf, seq, size, &hashes, &root).expect("inclusion proof verifies after the erasure");
    }
    assert_eq!(actions.last().map(String::as_str), Some("customer.erased"));
}
