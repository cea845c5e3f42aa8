//! FileSink and the Router, on a real file.

use std::sync::Arc;

use regain_delivery::{read_sink, Address, Channel, FileSink, Router, SendError, Transport};

use crate::{email, sms};

#[tokio::test]
async fn every_message_is_one_line_read_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.jsonl");
    let sink = FileSink::open(&path).unwrap();
    assert_eq!(read_sink(&path).unwrap(), []);

    sink.send(&email("m1", "bob@example.test")).await.unwrap();
    sink.send(&sms("m2", "+14155550100")).await.unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    for field in ["id", "channel", "to", "subject", "body", "at"] {
        assert!(first.get(field).is_some(), "no `{field}` in {first}");
    }

    let messages = read_sink(&path).unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].id, "m1");
    assert_eq!(messages[0].to, Address::Email("bob@example.test".into()));
    assert_eq!(messages[0].channel(), Channel::Email);
    assert_eq!(messages[0].subject, "Your ACME verification code");
    assert_eq!(messages[0].body, email("m1", "x").body);
    assert_eq!(messages[1].to, Address::Sms("+14155550100".into()));
    assert_eq!(messages[1].body, sms("m2", "x").body);
    for message in &messages {
        assert!(chrono::DateTime::parse_from_rfc3339(&message.at).is_ok(), "{}", message.at);
    }
}

#[tokio::test]
async fn concurrent_sends_never_interleave_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.jsonl");
    let sink = Arc::new(FileSink::open(&path).unwrap());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let sink = Arc::clone(&sink);
        tasks.spawn(async move {
            let mut message = email(&format!("m{i}"), "bob@example.test");
            message.body = format!("{}\n", "long body line ".repeat(200));
            sink.send(&message).await
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
    }
    let mut ids: Vec<String> = read_sink(&path).unwrap().into_iter().map(|m| m.id).collect();
    ids.sort();
    let mut expected: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
    expected.sort();
    assert_eq!(ids, expected);
}

#[cfg(unix)]
#[tokio::test]
async fn the_file_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();

    let new = dir.path().join("new.jsonl");
    FileSink::open(&new).unwrap().send(&sms("m1", "+14155550100")).await.unwrap();
    assert_eq!(std::fs::metadata(&new).unwrap().permissions().mode() & 0o777, 0o600);

    let existing = dir.path().join("existing.jsonl");
    std::fs::write(&existing, "").unwrap();
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o644)).unwrap();
    FileSink::open(&existing).unwrap();
    assert_eq!(std::fs::metadata(&existing).unwrap().permissions().mode() & 0o777, 0o600);
}

#[test]
fn read_sink_of_a_missing_file_is_empty_and_of_garbage_an_error() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(read_sink(dir.path().join("none.jsonl")).unwrap(), []);

    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"id\":\"m1\"}\n").unwrap();
    let error = read_sink(&bad).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    assert!(error.to_string().contains("line 1"), "{error}");
}

#[tokio::test]
async fn router_picks_the_transport_by_address() {
    let dir = tempfile::tempdir().unwrap();
    let email_path = dir.path().join("email.jsonl");
    let sms_path = dir.path().join("sms.jsonl");
    let email_sink: Arc<dyn Transport> = Arc::new(FileSink::open(&email_path).unwrap());
    let sms_sink: Arc<dyn Transport> = Arc::new(FileSink::open(&sms_path).unwrap());

    let router = Router::new(Some(email_sink), Some(sms_sink));
    router.send(&email("m1", "bob@example.test")).await.unwrap();
    router.send(&sms("m2", "+14155550100")).await.unwrap();
    // As a Transport too.
    let as_transport: &dyn Transport = &router;
    as_transport.send(&sms("m3", "+14155550100")).await.unwrap();

    let ids = |path| read_sink(path).unwrap().into_iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(ids(&email_path), ["m1"]);
    assert_eq!(ids(&sms_path), ["m2", "m3"]);
}

#[tokio::test]
async fn router_without_a_transport_for_the_channel_gives_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("email.jsonl");
    let email_only = Router::new(Some(Arc::new(FileSink::open(&path).unwrap())), None);

    match email_only.send(&sms("m1", "+14155550100")).await {
        Err(SendError::Permanent(text)) => assert!(text.contains("no sms transport configured"), "{text}"),
        other => panic!("expected a permanent error, got {other:?}"),
    }
    match Router::default().send(&email("m2", "bob@example.test")).await {
        Err(SendError::Permanent(text)) => assert!(text.contains("no email transport configured"), "{text}"),
        other => panic!("expected a permanent error, got {other:?}"),
    }
    assert_eq!(read_sink(&path).unwrap(), []);
}
