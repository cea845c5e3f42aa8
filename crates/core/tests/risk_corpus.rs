//! The risk engine's evaluation corpus (issue 5): labelled scenarios as data files in
//! `risk_corpus/`, scored with the default policy. The test fails when the share of fraud
//! caught (band high or critical) or of legitimate customers passed (band low or medium) falls
//! below the thresholds recorded in `risk_corpus/thresholds.json`, or when a scenario misses
//! the band it pins (`expect_band`, `expect_band_at_most`, `expect_band_at_least`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use regain_core::risk::{score, RiskBand, RiskPolicy, Snapshot};
use serde_json::Value;

struct Scenario {
    file: String,
    label: String,
    snapshot: Snapshot,
    expect: Vec<(String, RiskBand)>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("risk_corpus")
}

fn load() -> Vec<Scenario> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("corpus folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(|c: char| c.is_ascii_digit())))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let file = path.file_name().expect("name").to_string_lossy().into_owned();
            let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect(&file);
            let map = doc.as_object_mut().expect("object");
            let label = map.get("label").and_then(Value::as_str).expect("label").to_owned();
            assert!(label == "fraud" || label == "legitimate", "{file}: label must be fraud or legitimate");
            let mut expect = Vec::new();
            for key in ["expect_band", "expect_band_at_most", "expect_band_at_least"] {
                if let Some(band) = map.remove(key) {
                    let band = RiskBand::parse(key, band.as_str().expect("band name")).expect(&file);
                    expect.push((key.to_owned(), band));
                }
            }
            let snapshot = Snapshot::from_value(&doc).unwrap_or_else(|e| panic!("{file}: {e}"));
            Scenario { file, label, snapshot, expect }
        })
        .collect()
}

#[test]
fn the_corpus_meets_its_recorded_thresholds() {
    let thresholds: Value =
        serde_json::from_str(&std::fs::read_to_string(corpus_dir().join("thresholds.json")).expect("thresholds"))
            .expect("thresholds parse");
    let fraud_min = thresholds["fraud_caught_min_percent"].as_f64().expect("fraud_caught_min_percent");
    let legit_min = thresholds["legitimate_passed_min_percent"].as_f64().expect("legitimate_passed_min_percent");

    let scenarios = load();
    assert!(scenarios.len() >= 40, "the corpus has {} scenarios; it must keep at least 40", scenarios.len());
    let policy = RiskPolicy::default();
    let (mut fraud, mut caught, mut legit, mut passed) = (0u32, 0u32, 0u32, 0u32);
    let mut pinned = Vec::new();
    println!("{:<48} {:<11} {:>5}  {:<9} outcome", "scenario", "label", "score", "band");
    for s in &scenarios {
        let assessed = score(&policy, &s.snapshot);
        let outcome = if s.label == "fraud" {
            fraud += 1;
            let ok = assessed.band >= RiskBand::High;
            caught += u32::from(ok);
            if ok {
                "caught"
            } else {
                "MISSED"
            }
        } else {
            legit += 1;
            let ok = assessed.band <= RiskBand::Medium;
            passed += u32::from(ok);
            if ok {
                "passed"
            } else {
                "STOPPED"
            }
        };
        println!("{:<48} {:<11} {:>5}  {:<9} {outcome}", s.file, s.label, assessed.score, assessed.band.as_str());
        for (key, band) in &s.expect {
            let holds = match key.as_str() {
                "expect_band" => assessed.band == *band,
                "expect_band_at_most" => assessed.band <= *band,
                _ => assessed.band >= *band,
            };
            if !holds {
                pinned.push(format!("{}: {key} {band}, scored {} ({})", s.file, assessed.band, assessed.score));
            }
        }
        // Every assessment explains itself: its points add up to the score (before clamping).
        let total: i32 = assessed.reasons.iter().map(|r| r.points).sum();
        assert_eq!(i32::from(assessed.score), total.clamp(0, 100), "{}: reasons do not add up", s.file);
    }
    let caught_pct = f64::from(caught) * 100.0 / f64::from(fraud.max(1));
    let passed_pct = f64::from(passed) * 100.0 / f64::from(legit.max(1));
    println!("fraud caught: {caught}/{fraud} ({caught_pct:.1} %, threshold {fraud_min} %)");
    println!("legitimate passed: {passed}/{legit} ({passed_pct:.1} %, threshold {legit_min} %)");
    assert!(fraud >= 15 && legit >= 15, "the corpus needs both kinds of scenario");
    assert!(pinned.is_empty(), "scenarios off their pinned band:\n  {}", pinned.join("\n  "));
    assert!(caught_pct >= fraud_min, "fraud caught {caught_pct:.1} % < {fraud_min} %");
    assert!(passed_pct >= legit_min, "legitimate passed {passed_pct:.1} % < {legit_min} %");
}
