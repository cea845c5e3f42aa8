use chrono::{Duration, TimeZone, Utc};
use serde_json::json;

use super::*;

fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).single().unwrap_or_default()
}

fn set(methods: &[Method]) -> BTreeSet<Method> {
    methods.iter().copied().collect()
}

fn proof(method: Method) -> Evidence {
    Evidence { method, at: t0(), destination_since: Some(t0() - Duration::days(400)), sim_swapped: false }
}

fn rule(any_of: &[&[&[Method]]], cooling_off_hours: u32) -> KindRule {
    KindRule {
        any_of: any_of.iter().map(|slots| Alternative { proofs: slots.iter().map(|s| set(s)).collect() }).collect(),
        cooling_off_hours,
    }
}

/// A policy built by hand, bypassing `validate`: the floors must hold in `evaluate` anyway.
fn unchecked(kind: CaseKind, any_of: &[&[&[Method]]]) -> AssurancePolicy {
    let mut policy = AssurancePolicy::default();
    policy.kinds.set(kind, rule(any_of, 0));
    policy
}

/// Alternatives as slots of methods, for rules written in a table.
type Rules = &'static [&'static [&'static [Method]]];

fn eval(policy: &AssurancePolicy, kind: CaseKind, evidence: &[Evidence], available: &[Method]) -> Assessment {
    evaluate(policy, kind, evidence, &set(available), t0())
}

fn refused(text: &str) -> ValidationError {
    match AssurancePolicy::from_json(text) {
        Ok(policy) => panic!("accepted {text}: {policy:?}"),
        Err(e) => e,
    }
}

fn refused_policy(policy: AssurancePolicy) -> ValidationError {
    match policy.validate() {
        Ok(policy) => panic!("accepted {policy:?}"),
        Err(e) => e,
    }
}

use Method::{Document, Email, Knowledge, RecoveryCode, Sms, Totp};

const ALL_METHODS: [Method; 6] = [Email, Sms, Totp, RecoveryCode, Document, Knowledge];
const POSSESSION: [Method; 4] = [Email, Sms, Totp, RecoveryCode];

/// The default policy in plain terms (M1, M5, K1), written independently of the slot matcher:
/// whether the methods in `have` satisfy `kind`, and the ways to finish when every method is
/// available.
fn oracle(kind: CaseKind, have: &BTreeSet<Method>) -> (bool, Vec<Vec<BTreeSet<Method>>>) {
    let possession: BTreeSet<Method> = have.iter().copied().filter(|m| POSSESSION.contains(m)).collect();
    let document = have.contains(&Document);
    match kind {
        // Identified + one possession proof, or document + selfie.
        CaseKind::PasswordReset | CaseKind::UsernameRecovery | CaseKind::AccountUnlock => {
            (document || !possession.is_empty(), vec![vec![set(&POSSESSION)], vec![set(&[Document])]])
        }
        // M1: two proofs by different methods (a remaining authenticator is one of them), or
        // document + selfie. Never email alone, never SMS alone (M5).
        CaseKind::MfaRecovery | CaseKind::CompromisedAccount => {
            let satisfied = document || possession.len() >= 2;
            let next = if possession.len() == 1 {
                let rest = set(&POSSESSION).difference(&possession).copied().collect();
                vec![vec![rest], vec![set(&[Document])]]
            } else {
                vec![vec![set(&[Document])], vec![set(&POSSESSION), set(&POSSESSION)]]
            };
            (satisfied, next)
        }
        // A proof on an existing factor other than SMS (M5), or document + selfie.
        CaseKind::ContactChange => {
            let counting = [Email, Totp, RecoveryCode];
            let satisfied = document || counting.iter().any(|m| have.contains(m));
            (satisfied, vec![vec![set(&counting)], vec![set(&[Document])]])
        }
    }
}

#[test]
fn m1_k1_every_factor_combination_for_every_kind_against_the_default_policy() {
    let policy = AssurancePolicy::default();
    for &kind in CaseKind::ALL {
        for mask in 0u32..64 {
            let have: BTreeSet<Method> =
                ALL_METHODS.iter().enumerate().filter(|(bit, _)| mask & (1 << bit) != 0).map(|(_, &m)| m).collect();
            let evidence: Vec<Evidence> = have.iter().map(|&m| proof(m)).collect();
            let (satisfied, next) = oracle(kind, &have);
            let context = format!("{kind} with {have:?}");

            let assessment = eval(&policy, kind, &evidence, &ALL_METHODS);
            assert_eq!(assessment.satisfied, satisfied, "{context}");
            assert_eq!(assessment.cooling_off_hours, if kind == CaseKind::ContactChange { 24 } else { 0 }, "{context}");
            // K1: knowledge is always set aside, never used.
            let knowledge: Vec<(usize, IgnoredBecause)> = (evidence.iter().enumerate())
                .filter(|(_, e)| e.method == Knowledge)
                .map(|(i, _)| (i, IgnoredBecause::KnowledgeNeverCounts))
                .collect();
            assert_eq!(assessment.ignored, knowledge, "{context}");
            if satisfied {
                let used: BTreeSet<Method> = assessment.used.iter().map(|&i| evidence[i].method).collect();
                assert_eq!(used.len(), assessment.used.len(), "{context}: one proof per method");
                assert!(!used.contains(&Knowledge), "{context}");
                assert!(oracle(kind, &used).0, "{context}: what was used suffices on its own");
                assert!(assessment.next.is_empty(), "{context}");
            } else {
                assert!(assessment.used.is_empty(), "{context}");
                assert_eq!(assessment.next, next, "{context}");
            }

            // With nothing left to ask for, there is no next step, and the verdict is the same.
            let stuck = eval(&policy, kind, &evidence, &[]);
            assert_eq!(stuck.satisfied, satisfied, "{context}");
            assert!(stuck.next.is_empty(), "{context}");
        }
    }
}

#[test]
fn m1_the_same_method_twice_is_one_proof() {
    let policy = AssurancePolicy::default();
    let assessment = eval(&policy, CaseKind::MfaRecovery, &[proof(Email), proof(Email)], &[Email, Totp]);
    assert!(!assessment.satisfied);
    assert_eq!(assessment.next, vec![vec![set(&[Totp])]]);

    let assessment =
        eval(&policy, CaseKind::MfaRecovery, &[proof(Knowledge), proof(Email), proof(Email), proof(Totp)], &[]);
    assert!(assessment.satisfied);
    assert_eq!(assessment.used, vec![1, 3]);
    assert_eq!(assessment.ignored, vec![(0, IgnoredBecause::KnowledgeNeverCounts)]);
}

#[test]
fn a_proof_to_a_contact_point_changed_less_than_recent_contact_days_ago_does_not_count() {
    let policy = AssurancePolicy::default();
    let to = |since: Timestamp| Evidence { destination_since: Some(since), ..proof(Email) };
    let limit = t0() - Duration::days(7);

    let at_limit = eval(&policy, CaseKind::PasswordReset, &[to(limit)], &[]);
    assert!(at_limit.satisfied);
    assert!(at_limit.ignored.is_empty());
    assert!(eval(&policy, CaseKind::PasswordReset, &[to(limit - Duration::seconds(1))], &[]).satisfied);

    let inside = eval(&policy, CaseKind::PasswordReset, &[to(limit + Duration::seconds(1))], &[]);
    assert!(!inside.satisfied);
    assert_eq!(inside.ignored, vec![(0, IgnoredBecause::RecentContact)]);

    // A tenant may lengthen the window ...
    let longer = AssurancePolicy { recent_contact_days: 30, ..AssurancePolicy::default() };
    assert!(!eval(&longer, CaseKind::PasswordReset, &[to(t0() - Duration::days(29))], &[]).satisfied);
    assert!(eval(&longer, CaseKind::PasswordReset, &[to(t0() - Duration::days(30))], &[]).satisfied);
    // ... but not shorten it below 7 days, even by skipping validate.
    let shorter = AssurancePolicy { recent_contact_days: 1, ..AssurancePolicy::default() };
    assert!(!eval(&shorter, CaseKind::PasswordReset, &[to(t0() - Duration::days(2))], &[]).satisfied);
    let absurd = AssurancePolicy { recent_contact_days: u32::MAX, ..AssurancePolicy::default() };
    assert!(!eval(&absurd, CaseKind::PasswordReset, &[to(t0() - Duration::days(4000))], &[]).satisfied);

    assert!(policy.is_recent_contact(limit + Duration::seconds(1), t0()));
    assert!(!policy.is_recent_contact(limit, t0()));
}

#[test]
fn m5_sms_after_a_sim_swap_does_not_count() {
    let policy = AssurancePolicy::default();
    let swapped = Evidence { sim_swapped: true, ..proof(Sms) };

    let assessment = eval(&policy, CaseKind::PasswordReset, std::slice::from_ref(&swapped), &[]);
    assert!(!assessment.satisfied);
    assert_eq!(assessment.ignored, vec![(0, IgnoredBecause::SimSwap)]);
    assert!(!eval(&policy, CaseKind::MfaRecovery, &[proof(Email), swapped], &[]).satisfied);
    assert!(eval(&policy, CaseKind::MfaRecovery, &[proof(Email), proof(Sms)], &[]).satisfied);

    // The flag is about phones: it does not stop an email proof.
    assert!(eval(&policy, CaseKind::PasswordReset, &[Evidence { sim_swapped: true, ..proof(Email) }], &[]).satisfied);

    let limit = t0() - Duration::hours(72);
    assert!(!policy.is_recent_sim_swap(limit, t0()));
    assert!(policy.is_recent_sim_swap(limit + Duration::seconds(1), t0()));
    let shorter = AssurancePolicy { sim_swap_hours: 1, ..AssurancePolicy::default() };
    assert!(shorter.is_recent_sim_swap(t0() - Duration::hours(71), t0()));
}

#[test]
fn k1_knowledge_never_counts_even_in_a_policy_that_skipped_validate() {
    let policy = unchecked(CaseKind::PasswordReset, &[&[&[Knowledge]], &[&[Knowledge, Email]]]);
    let assessment = eval(&policy, CaseKind::PasswordReset, &[proof(Knowledge), proof(Knowledge)], &[Knowledge]);
    assert!(!assessment.satisfied);
    assert_eq!(
        assessment.ignored,
        vec![(0, IgnoredBecause::KnowledgeNeverCounts), (1, IgnoredBecause::KnowledgeNeverCounts)]
    );
    assert!(assessment.next.is_empty(), "knowledge is never suggested");
    let assessment = eval(&policy, CaseKind::PasswordReset, &[proof(Knowledge)], &[Knowledge, Email]);
    assert_eq!(assessment.next, vec![vec![set(&[Email])]]);
}

#[test]
fn the_floors_hold_in_evaluate_whatever_the_policy_says() {
    let cases: &[(CaseKind, Rules, &[Method], bool)] = &[
        (CaseKind::MfaRecovery, &[&[&[Email]]], &[Email], false),
        (CaseKind::MfaRecovery, &[&[&[Sms]]], &[Sms], false),
        (CaseKind::CompromisedAccount, &[&[&[Email, Sms]]], &[Email, Sms], false),
        (CaseKind::ContactChange, &[&[&[Sms]]], &[Sms], false),
        (CaseKind::MfaRecovery, &[&[]], &[], false),
        (CaseKind::PasswordReset, &[&[]], &[], false),
        (CaseKind::PasswordReset, &[], &[Email], false),
        // Controls: what the floors allow.
        (CaseKind::PasswordReset, &[&[&[Email]]], &[Email], true),
        (CaseKind::ContactChange, &[&[&[Email]]], &[Email], true),
        (CaseKind::MfaRecovery, &[&[&[Totp]]], &[Totp], true),
        (CaseKind::MfaRecovery, &[&[&[Email, Sms]], &[&[Sms]]], &[Email], false),
    ];
    for (kind, any_of, methods, satisfied) in cases {
        let policy = unchecked(*kind, any_of);
        let evidence: Vec<Evidence> = methods.iter().map(|&m| proof(m)).collect();
        assert_eq!(eval(&policy, *kind, &evidence, &[]).satisfied, *satisfied, "{kind} {any_of:?} with {methods:?}");
    }
    // A next step that would end in email alone is not offered.
    let policy = unchecked(CaseKind::MfaRecovery, &[&[&[Email, Totp]]]);
    assert_eq!(eval(&policy, CaseKind::MfaRecovery, &[], &[Email, Totp]).next, vec![vec![set(&[Totp])]]);
}

#[test]
fn next_steps_list_what_the_customer_can_still_give() {
    let policy = AssurancePolicy::default();
    let mfa = CaseKind::MfaRecovery;
    assert_eq!(eval(&policy, mfa, &[proof(Email)], &[Email, Sms, Totp]).next, vec![vec![set(&[Sms, Totp])]]);
    assert!(eval(&policy, mfa, &[proof(Email)], &[]).next.is_empty());
    assert_eq!(eval(&policy, mfa, &[proof(Email)], &[Document]).next, vec![vec![set(&[Document])]]);
    assert_eq!(
        eval(&policy, mfa, &[], &[Email, Totp, Document]).next,
        vec![vec![set(&[Document])], vec![set(&[Email, Totp]), set(&[Email, Totp])]]
    );
    assert_eq!(
        eval(&policy, CaseKind::PasswordReset, &[], &[Sms, Document]).next,
        vec![vec![set(&[Sms])], vec![set(&[Document])]]
    );
    // SMS does not count toward a contact change, so it is not offered either.
    let change = eval(&policy, CaseKind::ContactChange, &[proof(Sms)], &[Sms, Email]);
    assert!(!change.satisfied);
    assert_eq!(change.next, vec![vec![set(&[Email])]]);

    // The evidence stays in the slot it fills; only the other slot is asked for.
    let policy = unchecked(CaseKind::PasswordReset, &[&[&[Email], &[Email, Sms]]]);
    let assessment = eval(&policy, CaseKind::PasswordReset, &[proof(Email)], &[Sms, Totp]);
    assert_eq!(assessment.next, vec![vec![set(&[Sms])]]);
}

#[test]
fn the_default_policy_is_valid_and_its_json_shape_is_stable() {
    let policy = AssurancePolicy::default();
    assert_eq!(policy.clone().validate(), Ok(policy.clone()));
    let possession = json!(["email", "sms", "totp", "recovery_code"]);
    let one = json!({ "any_of": [{ "proofs": [possession] }, { "proofs": [["document"]] }], "cooling_off_hours": 0 });
    let two = json!({
        "any_of": [{ "proofs": [possession, possession] }, { "proofs": [["document"]] }],
        "cooling_off_hours": 0,
    });
    let change = json!({
        "any_of": [{ "proofs": [["email", "totp", "recovery_code"]] }, { "proofs": [["document"]] }],
        "cooling_off_hours": 24,
    });
    let expected = json!({
        "kinds": {
            "password_reset": one,
            "username_recovery": one,
            "account_unlock": one,
            "mfa_recovery": two,
            "contact_change": change,
            "compromised_account": two,
        },
        "recent_contact_days": 7,
        "sim_swap_hours": 72,
        "codes": { "sms_ttl_minutes": 10, "email_ttl_minutes": 10, "link_ttl_minutes": 30, "attempts_max": 5 },
        "failures": { "max": 5, "window_minutes": 1440, "cooldown_minutes": 1440 },
        "risk": crate::risk::RiskPolicy::default().to_value(),
        "recovery": { "mfa_reset_removes": ["totp", "recovery_codes"], "lockdown_review_days": 30 },
    });
    assert_eq!(policy.to_value(), expected);
    assert_eq!(AssurancePolicy::from_json(&policy.to_json()), Ok(policy.clone()));
    assert_eq!(policy.to_json(), policy.clone().to_json(), "canonical");
}

#[test]
fn a_partial_document_takes_defaults_for_what_it_leaves_out() {
    let policy = AssurancePolicy::from_json(
        r#"{"kinds": {"password_reset": {"any_of": [{"proofs": [["totp", "recovery_code"], ["email", "sms"]]}]}},
            "failures": {"max": 10}}"#,
    )
    .unwrap();
    let expected_rule = rule(&[&[&[Totp, RecoveryCode], &[Email, Sms]]], 0);
    assert_eq!(policy.rule(CaseKind::PasswordReset), &expected_rule);
    let mut expected = AssurancePolicy::default();
    expected.kinds.set(CaseKind::PasswordReset, expected_rule);
    expected.failures.max = 10;
    assert_eq!(policy, expected);
    assert_eq!(AssurancePolicy::from_json("{}"), Ok(AssurancePolicy::default()));

    // A kind's own default fills its missing fields: contact_change keeps its cooling-off.
    let policy =
        AssurancePolicy::from_json(r#"{"kinds": {"contact_change": {"any_of": [{"proofs": [["totp"]]}]}}}"#).unwrap();
    assert_eq!(policy.rule(CaseKind::ContactChange).cooling_off_hours, 24);
}

#[test]
fn a_stricter_policy_is_accepted_and_applied() {
    let policy = AssurancePolicy::from_json(
        r#"{"kinds": {"password_reset": {"any_of": [
                {"proofs": [["email", "sms", "totp", "recovery_code"], ["email", "sms", "totp", "recovery_code"]]}
            ], "cooling_off_hours": 2}},
            "recent_contact_days": 30, "sim_swap_hours": 168, "failures": {"max": 100}}"#,
    )
    .unwrap();
    let reset = CaseKind::PasswordReset;
    assert!(!eval(&policy, reset, &[proof(Email)], &[]).satisfied);
    assert!(!eval(&policy, reset, &[proof(Document)], &[]).satisfied);
    let assessment = eval(&policy, reset, &[proof(Email), proof(Totp)], &[]);
    assert!(assessment.satisfied);
    assert_eq!(assessment.cooling_off_hours, 2);
}

#[test]
fn validate_refuses_what_breaks_a_floor_or_a_range() {
    let mfa = r#"{"kinds": {"mfa_recovery": {"any_of": [{"proofs": PROOFS}]}}}"#;
    let change = r#"{"kinds": {"contact_change": {"any_of": [{"proofs": PROOFS}]}}}"#;
    let reset = r#"{"kinds": {"password_reset": {"any_of": [{"proofs": PROOFS}]}}}"#;
    let email_alone = "can be satisfied by email alone, which never recovers a second factor";
    let cases: &[(&str, &str, &str, &str)] = &[
        (reset, r#"[["email", "knowledge"]]"#, "kinds/password_reset/any_of/0/proofs/0", "never counts"),
        (reset, r#"[["knowledge"]]"#, "kinds/password_reset/any_of/0/proofs/0", "never counts"),
        (mfa, r#"[["email"]]"#, "kinds/mfa_recovery/any_of/0", email_alone),
        (mfa, r#"[["email", "totp"]]"#, "kinds/mfa_recovery/any_of/0", email_alone),
        (mfa, r#"[["sms"]]"#, "kinds/mfa_recovery/any_of/0", "sms alone"),
        (change, r#"[["sms"]]"#, "kinds/contact_change/any_of/0", "sms alone"),
        (mfa, "[]", "kinds/mfa_recovery/any_of/0/proofs", "at least one proof"),
        (mfa, "[[]]", "kinds/mfa_recovery/any_of/0/proofs/0", "at least one method"),
        (reset, r#"[["email"], ["email"]]"#, "kinds/password_reset/any_of/0", "can never be satisfied"),
        (
            reset,
            r#"[["email"], ["sms"], ["totp"], ["recovery_code"], ["document"], ["email"]]"#,
            "kinds/password_reset/any_of/0/proofs",
            "at most 5",
        ),
        (mfa, r#"[["email", "bogus"]]"#, "kinds/mfa_recovery/any_of/0/proofs/0/1", "must be one of email, sms"),
        (mfa, r#"[["email", 3]]"#, "kinds/mfa_recovery/any_of/0/proofs/0/1", "method name"),
        (mfa, r#"["email"]"#, "kinds/mfa_recovery/any_of/0/proofs/0", "must be a list"),
    ];
    for (template, proofs, field, message) in cases {
        let e = refused(&template.replace("PROOFS", proofs));
        assert_eq!(e.field, *field, "{proofs}: {e}");
        assert!(e.message.contains(message), "{proofs}: {e}");
    }
    let e = refused(&mfa.replace("PROOFS", r#"[["email"]]"#));
    assert_eq!(e.message, email_alone);
    let e = refused(r#"{"kinds": {"compromised_account": {"any_of": [{"proofs": [["email"]]}]}}}"#);
    assert_eq!((e.field.as_str(), e.message.as_str()), ("kinds/compromised_account/any_of/0", email_alone));

    let documents: &[(&str, &str, &str)] = &[
        (r#"{"recent_contact_days": 6}"#, "recent_contact_days", "between 7 and 365"),
        (r#"{"recent_contact_days": 366}"#, "recent_contact_days", "between 7 and 365"),
        (r#"{"sim_swap_hours": 71}"#, "sim_swap_hours", "between 72 and 2160"),
        (r#"{"failures": {"max": 101}}"#, "failures/max", "between 1 and 100"),
        (r#"{"failures": {"max": 0}}"#, "failures/max", "between 1 and 100"),
        (r#"{"failures": {"window_minutes": 43201}}"#, "failures/window_minutes", "between 1 and 43200"),
        (r#"{"codes": {"sms_ttl_minutes": 11}}"#, "codes/sms_ttl_minutes", "between 1 and 10"),
        (r#"{"codes": {"email_ttl_minutes": 1441}}"#, "codes/email_ttl_minutes", "between 1 and 1440"),
        (r#"{"codes": {"attempts_max": 0}}"#, "codes/attempts_max", "between 1 and 10"),
        (r#"{"codes": {"sms_ttl_minutes": 99999999999}}"#, "codes/sms_ttl_minutes", "between 1 and 10"),
        (r#"{"codes": {"sms_ttl_minutes": "10"}}"#, "codes/sms_ttl_minutes", "whole number"),
        (r#"{"codes": {"sms_ttl_minutes": -1}}"#, "codes/sms_ttl_minutes", "whole number"),
        (r#"{"codes": {"sms_ttl_minutes": 1.5}}"#, "codes/sms_ttl_minutes", "whole number"),
        (r#"{"codes": {"sms_ttl": 5}}"#, "codes/sms_ttl", "not a known field"),
        (
            r#"{"kinds": {"contact_change": {"cooling_off_hours": 0}}}"#,
            "kinds/contact_change/cooling_off_hours",
            "between 1 and 720",
        ),
        (
            r#"{"kinds": {"password_reset": {"cooling_off_hours": 721}}}"#,
            "kinds/password_reset/cooling_off_hours",
            "between 0 and 720",
        ),
        (r#"{"kinds": {"password_reset": {"any_of": []}}}"#, "kinds/password_reset/any_of", "at least one alternative"),
        (r#"{"kinds": {"password_reset": {"any_of": {}}}}"#, "kinds/password_reset/any_of", "must be a list"),
        (r#"{"kinds": {"password_reset": {"any_of": [{}]}}}"#, "kinds/password_reset/any_of/0/proofs", "is required"),
        (
            r#"{"kinds": {"password_reset": {"any_of": [{"proofs": [["email"]], "why": 1}]}}}"#,
            "kinds/password_reset/any_of/0/why",
            "not a known field",
        ),
        (
            r#"{"kinds": {"password_reset": {"alternatives": []}}}"#,
            "kinds/password_reset/alternatives",
            "not a known field",
        ),
        (r#"{"kinds": {"pasword_reset": {}}}"#, "kinds/pasword_reset", "must be one of password_reset"),
        (r#"{"kinds": {"a/b": {}}}"#, "kinds/a~1b", "must be one of"),
        (r#"{"kinds": []}"#, "kinds", "must be an object"),
        (r#"{"sms_ttl_minutes": 10}"#, "sms_ttl_minutes", "not a known field"),
        ("[]", "", "must be an object"),
        ("{", "", "must be valid JSON"),
        ("", "", "must be valid JSON"),
    ];
    for (text, field, message) in documents {
        let e = refused(text);
        assert_eq!(e.field, *field, "{text}: {e}");
        assert!(e.message.contains(message), "{text}: {e}");
    }

    // Hand-built policies go through the same checks.
    let too_many = AssurancePolicy::default();
    let mut many = too_many.clone();
    many.kinds.get_mut(CaseKind::AccountUnlock).any_of = vec![Alternative { proofs: vec![set(&[Totp])] }; 17];
    assert_eq!(refused_policy(many).field, "kinds/account_unlock/any_of");
    let mut no_rule = too_many.clone();
    no_rule.kinds.get_mut(CaseKind::UsernameRecovery).any_of.clear();
    assert_eq!(refused_policy(no_rule).field, "kinds/username_recovery/any_of");
    let mut link = too_many;
    link.codes.link_ttl_minutes = 0;
    assert_eq!(refused_policy(link).field, "codes/link_ttl_minutes");
}

#[test]
fn validate_accepts_the_edges_of_every_range() {
    let text = r#"{"recent_contact_days": 365, "sim_swap_hours": 2160,
        "codes": {"sms_ttl_minutes": 1, "email_ttl_minutes": 1440, "link_ttl_minutes": 1440, "attempts_max": 10},
        "failures": {"max": 100, "window_minutes": 43200, "cooldown_minutes": 1},
        "kinds": {"contact_change": {"cooling_off_hours": 720},
                  "mfa_recovery": {"any_of": [{"proofs": [["sms"], ["email"]]}, {"proofs": [["totp"]]}]}}}"#;
    let policy = AssurancePolicy::from_json(text).unwrap();
    assert_eq!(AssurancePolicy::from_json(&policy.to_json()), Ok(policy.clone()));
    assert_eq!(policy.failures.max, 100);
    assert_eq!(policy.rule(CaseKind::ContactChange).cooling_off_hours, 720);
}

#[test]
fn methods_read_and_write_by_name() {
    assert_eq!(Method::parse("method", "recovery_code"), Ok(RecoveryCode));
    assert!(Method::parse("method", "Email").is_err());
    let sorted: Vec<Method> = set(&[Knowledge, Document, Sms, Email]).into_iter().collect();
    assert_eq!(sorted, vec![Email, Sms, Document, Knowledge]);
}

#[test]
fn cooling_off_grows_with_the_risk_band() {
    use crate::risk::RiskBand;
    let policy = AssurancePolicy::default();
    let hours = |kind, band| policy.cooling_off_hours(kind, band);
    // The contact change waits a day by default; a password reset does not, unless the risk is high.
    assert_eq!(hours(CaseKind::ContactChange, None), 24);
    assert_eq!(hours(CaseKind::ContactChange, Some(RiskBand::Low)), 24);
    assert_eq!(hours(CaseKind::ContactChange, Some(RiskBand::Medium)), 48);
    assert_eq!(hours(CaseKind::ContactChange, Some(RiskBand::High)), 48);
    assert_eq!(hours(CaseKind::PasswordReset, Some(RiskBand::Medium)), 0);
    assert_eq!(hours(CaseKind::PasswordReset, Some(RiskBand::High)), 24);
    assert_eq!(hours(CaseKind::PasswordReset, Some(RiskBand::Critical)), 24);
}

#[test]
fn the_recovery_section_names_the_factors_an_mfa_reset_removes() {
    // Issue 6: "removes the factors named by the policy"; a lockdown's review window.
    let default = AssurancePolicy::default();
    assert_eq!(default.recovery.mfa_reset_removes, BTreeSet::from([Factor::Totp, Factor::RecoveryCodes]));
    assert_eq!(default.recovery.lockdown_review_days, 30);
    let policy = AssurancePolicy::from_value(&json!({
        "recovery": {"mfa_reset_removes": ["totp", "passkeys", "recovery_codes"], "lockdown_review_days": 90}
    }))
    .unwrap();
    assert_eq!(policy.recovery.mfa_reset_removes.len(), 3);
    assert_eq!(policy.recovery.lockdown_review_days, 90);
    assert_eq!(AssurancePolicy::from_json(&policy.to_json()).unwrap(), policy, "round trip");

    let err = AssurancePolicy::from_value(&json!({"recovery": {"mfa_reset_removes": []}})).unwrap_err();
    assert_eq!(err.field, "recovery/mfa_reset_removes", "{err}");
    let err = AssurancePolicy::from_value(&json!({"recovery": {"mfa_reset_removes": ["sms"]}})).unwrap_err();
    assert_eq!(err.field, "recovery/mfa_reset_removes/0", "{err}");
    let err = AssurancePolicy::from_value(&json!({"recovery": {"lockdown_review_days": 0}})).unwrap_err();
    assert!(err.field.starts_with("recovery/"), "{err}");
    let err = AssurancePolicy::from_value(&json!({"recovery": {"unknown": 1}})).unwrap_err();
    assert!(err.field.contains("unknown") || err.message.contains("unknown"), "{err}");
}
