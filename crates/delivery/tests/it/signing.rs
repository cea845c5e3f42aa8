//! Standard Webhooks signatures: the published vector (`../shared/vectors/standard-webhooks.json`),
//! tampering, clock skew at the five-minute boundary, rotation, malformed headers, and the PyPI
//! `standardwebhooks` library verifying what Regain signs (and Regain verifying what it signs).

use std::path::Path;
use std::process::Command;

use regain_delivery::signing::{VerifyError, WebhookSecret, TOLERANCE_SECONDS};
use serde_json::Value;

fn vector() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/standard-webhooks.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

#[test]
fn the_published_vector_signs_and_verifies() {
    let v = vector();
    let secret = WebhookSecret::parse(v["secret"].as_str().unwrap()).unwrap();
    let (id, ts, body) =
        (v["webhook_id"].as_str().unwrap(), v["webhook_timestamp"].as_i64().unwrap(), v["body"].as_str().unwrap());
    assert_eq!(secret.sign(id, ts, body.as_bytes()), v["expected_signature"].as_str().unwrap());
    let expected = v["expected_signature"].as_str().unwrap();
    assert_eq!(secret.verify(id, &ts.to_string(), expected, body.as_bytes(), ts), Ok(()));
    let wrong = v["must_fail_signature"].as_str().unwrap();
    assert_eq!(secret.verify(id, &ts.to_string(), wrong, body.as_bytes(), ts), Err(VerifyError::NoMatch));
    assert_eq!(secret.to_text(), v["secret"].as_str().unwrap(), "the secret prints as it was given");
    assert_eq!(format!("{secret:?}"), "WebhookSecret(<redacted>)");
}

#[test]
fn tampering_skew_and_bad_headers_are_refused() {
    let v = vector();
    let secret = WebhookSecret::parse(v["secret"].as_str().unwrap()).unwrap();
    let (id, ts, body) =
        (v["webhook_id"].as_str().unwrap(), v["webhook_timestamp"].as_i64().unwrap(), v["body"].as_str().unwrap());
    let signature = secret.sign(id, ts, body.as_bytes());
    let check = |id: &str, ts_text: &str, sig: &str, body: &str, now: i64| {
        secret.verify(id, ts_text, sig, body.as_bytes(), now)
    };
    let t = ts.to_string();
    assert_eq!(check(id, &t, &signature, "{\"test\": 2432232315}", ts), Err(VerifyError::NoMatch), "body");
    assert_eq!(check("msg_other", &t, &signature, body, ts), Err(VerifyError::NoMatch), "id");
    assert_eq!(check(id, &(ts + 1).to_string(), &signature, body, ts), Err(VerifyError::NoMatch), "timestamp");
    // Five minutes either way is accepted; a second more is not.
    assert_eq!(check(id, &t, &signature, body, ts + TOLERANCE_SECONDS), Ok(()));
    assert_eq!(check(id, &t, &signature, body, ts + TOLERANCE_SECONDS + 1), Err(VerifyError::TooOld));
    assert_eq!(check(id, &t, &signature, body, ts - TOLERANCE_SECONDS), Ok(()));
    assert_eq!(check(id, &t, &signature, body, ts - TOLERANCE_SECONDS - 1), Err(VerifyError::TooNew));
    // Rotation: any one of several signatures will do; other versions are skipped.
    let other = WebhookSecret::from_bytes(vec![7; 32]).unwrap();
    let both = format!("v1a,abc {} {}", other.sign(id, ts, body.as_bytes()), signature);
    assert_eq!(check(id, &t, &both, body, ts), Ok(()));
    for (sig, ts_text, id_text, want) in [
        ("", t.as_str(), id, VerifyError::Malformed("webhook-signature")),
        ("v2,abc", t.as_str(), id, VerifyError::Malformed("webhook-signature")),
        ("v1,not base64!", t.as_str(), id, VerifyError::NoMatch),
        (signature.as_str(), "soon", id, VerifyError::Malformed("webhook-timestamp")),
        (signature.as_str(), t.as_str(), "", VerifyError::Malformed("webhook-id")),
        (signature.as_str(), "-9223372036854775808", id, VerifyError::TooOld),
    ] {
        assert_eq!(check(id_text, ts_text, sig, body, ts), Err(want), "{sig:?} {ts_text:?} {id_text:?}");
    }
    assert!(WebhookSecret::parse("whsec_short").is_err());
    assert!(WebhookSecret::parse("whsec_***").is_err());
    assert!(WebhookSecret::from_bytes(vec![1; 8]).is_err());
}

/// The Python interpreter with `standardwebhooks` (the README's test command sets it up).
fn python() -> String {
    std::env::var("REGAIN_TEST_PYTHON")
        .expect("REGAIN_TEST_PYTHON must name a Python with standardwebhooks (scripts/test.sh sets it)")
}

#[test]
fn the_standardwebhooks_library_verifies_what_regain_signs_and_back() {
    let secret = WebhookSecret::from_bytes((0u8..32).collect()).unwrap();
    let id = "msg_2Yc8Rg0A9rHk3";
    let timestamp = chrono::Utc::now().timestamp();
    let body = r#"{"type":"case.resolved","data":{"case_id":"01a1"}}"#;
    let signature = secret.sign(id, timestamp, body.as_bytes());
    let script = r#"
import sys, json
from datetime import datetime, timezone
from standardwebhooks.webhooks import Webhook
secret, msg_id, ts, sig, body = sys.argv[1:6]
wh = Webhook(secret)
headers = {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": sig}
wh.verify(body, headers)
try:
    wh.verify(body + " ", headers)
    print("TAMPERED-ACCEPTED")
except Exception:
    pass
print(wh.sign(msg_id + "-py", datetime.fromtimestamp(int(ts), tz=timezone.utc), body))
"#;
    let out = Command::new(python())
        .args(["-c", script, &secret.to_text(), id, &timestamp.to_string(), &signature, body])
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the library refused Regain's signature: {}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("TAMPERED-ACCEPTED"), "{stdout}");
    // And the library's own signature verifies here.
    let theirs = stdout.trim();
    assert_eq!(secret.verify(&format!("{id}-py"), &timestamp.to_string(), theirs, body.as_bytes(), timestamp), Ok(()));
}
