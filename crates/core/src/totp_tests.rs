use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

use super::*;

fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/vectors/otp.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn rfc4226_hotp_vectors() {
    let v = vectors();
    let key = v["hotp"]["key_ascii"].as_str().unwrap().as_bytes();
    assert_eq!(decode_secret(v["hotp"]["key_base32"].as_str().unwrap()).unwrap(), key);
    let codes = v["hotp"]["codes_by_counter"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    for (counter, code) in codes.iter().enumerate() {
        assert_eq!(hotp(key, counter as u64, 6, Algorithm::Sha1), code.as_str().unwrap(), "counter {counter}");
    }
}

#[test]
fn rfc6238_totp_vectors() {
    let v = vectors();
    let t = &v["totp"];
    let mut checked = 0;
    for case in t["cases"].as_array().unwrap() {
        let at: DateTime<Utc> = Utc.timestamp_opt(case["unix_time"].as_i64().unwrap(), 0).single().unwrap();
        for (name, algorithm) in
            [("SHA1", Algorithm::Sha1), ("SHA256", Algorithm::Sha256), ("SHA512", Algorithm::Sha512)]
        {
            let key = t["keys_ascii"][name].as_str().unwrap().as_bytes();
            let params = TotpParams { algorithm, digits: 8, step_seconds: 30 };
            let want = case[name].as_str().unwrap();
            assert_eq!(totp(key, at, &params), want, "{name} at {at}");
            assert_eq!(verify_totp(key, want, at, &params, 1, None), Some(time_step(at, &params)));
            checked += 1;
        }
    }
    assert_eq!(checked, 18);
}

#[test]
fn verification_allows_one_step_of_skew_and_refuses_replay() {
    // SECURITY.md M3: ±1 step, a used step refused.
    let key = b"12345678901234567890";
    let params = TotpParams::default();
    let at = Utc.timestamp_opt(1_111_111_111, 0).single().unwrap();
    let step = time_step(at, &params);
    let previous = hotp(key, step - 1, 6, Algorithm::Sha1);
    let two_back = hotp(key, step - 2, 6, Algorithm::Sha1);
    assert_eq!(verify_totp(key, &previous, at, &params, 1, None), Some(step - 1));
    assert_eq!(verify_totp(key, &two_back, at, &params, 1, None), None);
    let current = totp(key, at, &params);
    assert_eq!(verify_totp(key, &current, at, &params, 1, Some(step)), None, "replay of a used step");
    assert_eq!(verify_totp(key, &current, at, &params, 1, Some(step - 1)), Some(step));
    assert_eq!(verify_totp(key, "12345", at, &params, 1, None), None);
    assert_eq!(verify_totp(key, "abcdef", at, &params, 1, None), None);
}

#[test]
fn otpauth_uri_carries_the_secret_and_parameters() {
    let uri = otpauth_uri("Regain (ACME)", "ana@acme.test", b"12345678901234567890", &TotpParams::default());
    assert_eq!(
        uri,
        "otpauth://totp/Regain%20%28ACME%29:ana@acme.test?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Regain%20%28ACME%29&algorithm=SHA1&digits=6&period=30"
    );
}
