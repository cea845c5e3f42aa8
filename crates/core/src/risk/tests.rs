use chrono::{Duration, TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;

use super::lists::{network_of, DomainList, IpList};
use super::*;
use crate::case::{apply, Actor, Case, CaseCommand, CaseError, CaseEvent, CaseState, NewCase};
use crate::ids::{CaseId, CustomerId, StaffId, TenantId};
use crate::policy::{evaluate, AssurancePolicy, Available, Evidence, Method};
use crate::tenant::TenantSettings;
use crate::Role;

fn now() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 2, 14, 0, 0).single().unwrap_or_default()
}

fn snapshot(kind: CaseKind, channel: Channel, facts: Vec<Fact>) -> Snapshot {
    Snapshot { kind, channel, now: now(), signals: facts.into_iter().map(|f| Signal::new(f, "test", now())).collect() }
}

fn web_reset(facts: Vec<Fact>) -> Snapshot {
    snapshot(CaseKind::PasswordReset, Channel::Web, facts)
}

fn codes(a: &RiskAssessment) -> Vec<(&'static str, i32)> {
    a.reasons.iter().map(|r| (r.code.as_str(), r.points)).collect()
}

#[test]
fn every_band_routes_as_the_issue_says() {
    for &kind in CaseKind::ALL {
        let low = route(RiskBand::Low, kind);
        assert_eq!(
            (low.action, low.tier, low.step_up, low.approval, low.hold),
            (RouteAction::Proceed, Tier::FRONT_LINE, false, false, false)
        );
        let medium = route(RiskBand::Medium, kind);
        assert_eq!(
            (medium.action, medium.step_up, medium.approval, medium.hold),
            (RouteAction::StepUp, true, false, false)
        );
        let high = route(RiskBand::High, kind);
        assert_eq!(
            (high.action, high.tier, high.step_up, high.approval, high.hold),
            (RouteAction::SupervisorApproval, Tier::SUPERVISOR, true, true, false)
        );
        let critical = route(RiskBand::Critical, kind);
        assert_eq!(critical.tier, Tier::SECURITY, "{kind}");
        assert!(critical.lockdown_offered && critical.approval && critical.step_up, "{kind}");
        // The lockdown itself is never held by the risk that calls for it.
        assert_eq!(critical.hold, kind != CaseKind::CompromisedAccount, "{kind}");
    }
}

#[test]
fn bands_start_at_their_thresholds() {
    let bands = RiskPolicy::default().bands;
    for (score, band) in [
        (0, RiskBand::Low),
        (29, RiskBand::Low),
        (30, RiskBand::Medium),
        (54, RiskBand::Medium),
        (55, RiskBand::High),
        (79, RiskBand::High),
        (80, RiskBand::Critical),
        (100, RiskBand::Critical),
    ] {
        assert_eq!(bands.band(score), band, "score {score}");
    }
}

#[test]
fn an_empty_snapshot_is_low_and_explains_nothing() {
    let a = score(&RiskPolicy::default(), &web_reset(vec![]));
    assert_eq!((a.score, a.band), (0, RiskBand::Low));
    assert!(a.reasons.is_empty());
}

#[test]
fn velocity_counts_from_its_threshold() {
    let policy = RiskPolicy::default();
    let requests = |subject, count| Fact::Requests { subject, count, window_minutes: 60 };
    assert!(score(&policy, &web_reset(vec![requests(Subject::Ip, 4)])).reasons.is_empty());
    let a = score(&policy, &web_reset(vec![requests(Subject::Ip, 5)]));
    assert_eq!(codes(&a), [("velocity_ip", 25)]);
    assert!(a.reasons[0].detail.contains("5 recovery requests from this IP address in the last 1 h"), "{a:?}");
    let a = score(
        &policy,
        &web_reset(vec![requests(Subject::Customer, 3), requests(Subject::Phone, 3), requests(Subject::Email, 3)]),
    );
    assert_eq!(a.score, 50);
}

#[test]
fn failures_count_per_failure_up_to_the_cap() {
    let policy = RiskPolicy::default();
    let failures = |count| web_reset(vec![Fact::Failures { count, window_minutes: 1440 }]);
    assert!(score(&policy, &failures(0)).reasons.is_empty());
    assert_eq!(score(&policy, &failures(1)).score, 10);
    assert_eq!(score(&policy, &failures(2)).score, 20);
    assert_eq!(score(&policy, &failures(9)).score, 30, "capped at failure_points_max");
}

#[test]
fn recent_changes_count_inside_their_window_only() {
    let policy = RiskPolicy::default();
    let changed = |what, days| web_reset(vec![Fact::Changed { what, at: now() - Duration::days(days) }]);
    assert_eq!(codes(&score(&policy, &changed(Change::Contact, 3))), [("recent_contact_change", 20)]);
    assert_eq!(codes(&score(&policy, &changed(Change::Factor, 13))), [("recent_factor_change", 15)]);
    assert!(score(&policy, &changed(Change::Password, 14)).reasons.is_empty(), "14 days is no longer recent");
    // A change dated after now (a clock that runs ahead) counts as just now.
    assert_eq!(codes(&score(&policy, &changed(Change::Password, -1))), [("recent_password_change", 10)]);
}

#[test]
fn a_sim_swap_within_the_day_weighs_more_than_one_within_the_week() {
    let policy = RiskPolicy::default();
    let swapped = |hours| web_reset(vec![Fact::SimSwap { changed_at: Some(now() - Duration::hours(hours)) }]);
    assert_eq!(codes(&score(&policy, &swapped(5))), [("sim_swap_fresh", 60)]);
    assert_eq!(codes(&score(&policy, &swapped(24))), [("sim_swap_recent", 45)]);
    assert_eq!(codes(&score(&policy, &swapped(167))), [("sim_swap_recent", 45)]);
    assert!(score(&policy, &swapped(168)).reasons.is_empty());
    assert!(score(&policy, &web_reset(vec![Fact::SimSwap { changed_at: None }])).reasons.is_empty());
    // Reported a little after now (the operator's clock ahead): just now, not ignored.
    let ahead = web_reset(vec![Fact::SimSwap { changed_at: Some(now() + Duration::seconds(30)) }]);
    assert_eq!(codes(&score(&policy, &ahead)), [("sim_swap_fresh", 60)]);
}

#[test]
fn sign_in_history_speaks_for_and_against() {
    let policy = RiskPolicy::default();
    let history = |ip, device| web_reset(vec![Fact::LoginHistory { successes: 40, ip, device }]);
    let known = score(&policy, &history(Some(Familiarity::Seen), Some(Familiarity::Seen)));
    assert_eq!(codes(&known), [("known_ip", -10), ("known_device", -10)]);
    assert_eq!(known.score, 0, "clamped at 0");
    let new = score(&policy, &history(Some(Familiarity::New), Some(Familiarity::New)));
    assert_eq!(codes(&new), [("new_network", 15), ("new_device", 10)]);
    let network = score(&policy, &history(Some(Familiarity::NetworkSeen), None));
    assert_eq!(codes(&network), [("new_ip", 5)]);
    let none =
        score(&policy, &web_reset(vec![Fact::LoginHistory { successes: 0, ip: Some(Familiarity::New), device: None }]));
    assert_eq!(codes(&none), [("no_login_history", 5)]);
}

#[test]
fn lists_give_one_reason_per_action_naming_every_list() {
    let policy = RiskPolicy::default();
    let listed = |list: &str, action| Fact::IpListed { list: list.into(), action };
    let a = score(
        &policy,
        &web_reset(vec![
            listed("tor-exit", ListAction::Deny),
            listed("blocked", ListAction::Deny),
            listed("office", ListAction::Allow),
        ]),
    );
    assert_eq!(codes(&a), [("ip_denied", 50), ("ip_allowed", -20)]);
    assert!(a.reasons[0].detail.contains("“tor-exit”, “blocked”"), "{a:?}");
    assert_eq!(a.score, 30);
}

#[test]
fn observations_count_once_each() {
    let policy = RiskPolicy::default();
    let seen = |what| Fact::Observed { what };
    let a = score(
        &policy,
        &snapshot(
            CaseKind::PasswordReset,
            Channel::Web,
            vec![seen(Observation::RefusesCode), seen(Observation::RefusesCode), seen(Observation::Urgency)],
        ),
    );
    assert_eq!(codes(&a), [("observed_refuses_code", 30), ("observed_urgency", 15)]);
}

#[test]
fn a_missing_signal_counts_as_its_policy_says() {
    let mut policy = RiskPolicy::default();
    let missing = web_reset(vec![Fact::Missing { signal: SignalKind::SimSwap, why: "timed out".into() }]);
    let closed = score(&policy, &missing);
    assert_eq!(codes(&closed), [("signal_missing", 15)]);
    assert!(closed.reasons[0].detail.contains("sim_swap unavailable: timed out; counted as a risk (fail-closed)"));
    policy.on_missing.insert(SignalKind::SimSwap, OnMissing::Open);
    let open = score(&policy, &missing);
    assert_eq!(codes(&open), [("signal_missing", 0)], "still explained, worth nothing");
    assert_eq!(open.score, 0);
}

#[test]
fn off_hours_needs_enough_history() {
    let policy = RiskPolicy::default();
    let hour = |share, samples| web_reset(vec![Fact::HourOfDay { hour: 3, share_permille: share, samples }]);
    assert_eq!(codes(&score(&policy, &hour(4, 5000))), [("off_hours", 10)]);
    assert!(score(&policy, &hour(4, 199)).reasons.is_empty(), "too little history to judge");
    assert!(score(&policy, &hour(10, 5000)).reasons.is_empty(), "at the threshold: usual enough");
}

#[test]
fn the_channel_and_the_kind_weigh_in() {
    let a = score(&RiskPolicy::default(), &snapshot(CaseKind::ContactChange, Channel::Phone, vec![]));
    assert_eq!(codes(&a), [("requested_action", 10), ("channel", 5)]);
}

#[test]
fn scores_are_clamped_and_reasons_come_largest_first() {
    let policy = RiskPolicy::default();
    let snap = snapshot(
        CaseKind::MfaRecovery,
        Channel::Phone,
        vec![
            Fact::Observed { what: Observation::Urgency },
            Fact::SimSwap { changed_at: Some(now() - Duration::hours(2)) },
            Fact::IpListed { list: "tor-exit".into(), action: ListAction::Deny },
        ],
    );
    let a = score(&policy, &snap);
    assert_eq!(a.score, 100);
    assert_eq!(a.band, RiskBand::Critical);
    assert!(a.route.hold);
    assert_eq!(
        codes(&a),
        [("sim_swap_fresh", 60), ("ip_denied", 50), ("observed_urgency", 15), ("requested_action", 10), ("channel", 5)]
    );
    // Deterministic: the same snapshot scores the same, reason for reason.
    assert_eq!(score(&policy, &snap.clone()), a);
}

#[test]
fn the_policy_section_round_trips_and_takes_defaults() {
    let policy = RiskPolicy::default().validate().expect("the default is valid");
    assert_eq!(RiskPolicy::from_value(&policy.to_value(), "risk"), Ok(policy.clone()));
    let partial = RiskPolicy::from_value(
        &json!({"bands": {"medium": 20}, "weights": {"sim_swap_recent": 60}, "velocity": {"ip": {"threshold": 10}},
                "deadlines_ms": {"sim_swap": 150}, "on_missing": {"sim_swap": "open"}}),
        "risk",
    )
    .expect("partial");
    assert_eq!(partial.bands.medium, 20);
    assert_eq!(partial.bands.high, 55);
    assert_eq!(partial.weight(ReasonCode::SimSwapRecent), 60);
    assert_eq!(partial.weight(ReasonCode::IpDenied), 50);
    assert_eq!(partial.velocity(Subject::Ip), VelocityRule { window_minutes: 60, threshold: 10 });
    assert_eq!(partial.deadline_ms(Provider::SimSwap), 150);
    assert_eq!(partial.deadline_ms(Provider::Store), 250);
    assert_eq!(partial.on_missing(SignalKind::SimSwap), OnMissing::Open);
}

#[test]
fn a_bad_policy_section_names_its_path() {
    let bad =
        |value: serde_json::Value| AssurancePolicy::from_value(&json!({ "risk": value })).expect_err("refused").field;
    assert_eq!(bad(json!({"bogus": 1})), "risk/bogus");
    assert_eq!(bad(json!({"weights": {"nonsense": 5}})), "risk/weights/nonsense");
    assert_eq!(bad(json!({"weights": {"channel": 5}})), "risk/weights/channel");
    assert_eq!(bad(json!({"weights": {"sim_swap_recent": -5}})), "risk/weights/sim_swap_recent");
    assert_eq!(bad(json!({"weights": {"ip_denied": 101}})), "risk/weights/ip_denied");
    assert_eq!(bad(json!({"weights": {"ip_denied": "a lot"}})), "risk/weights/ip_denied");
    assert_eq!(bad(json!({"bands": {"high": 20}})), "risk/bands");
    assert_eq!(bad(json!({"bands": {"critical": 300}})), "risk/bands/critical");
    assert_eq!(bad(json!({"sim_swap_hours": 24})), "risk/sim_swap_hours");
    assert_eq!(bad(json!({"deadlines_ms": {"store": 60000}})), "risk/deadlines_ms/store");
    assert_eq!(bad(json!({"deadlines_ms": {"oracle": 10}})), "risk/deadlines_ms/oracle");
    assert_eq!(bad(json!({"on_missing": {"sim_swap": "maybe"}})), "risk/on_missing/sim_swap");
    assert_eq!(bad(json!({"velocity": {"ip": {"threshold": 0}}})), "risk/velocity/ip/threshold");
    assert_eq!(bad(json!({"channels": {"fax": 1}})), "risk/channels/fax");
    assert_eq!(bad(json!({"kinds": {"password_reset": -1}})), "risk/kinds/password_reset");
    // Trust signals may speak for a request.
    assert!(AssurancePolicy::from_value(&json!({"risk": {"weights": {"known_ip": -30}}})).is_ok());
}

#[test]
fn ip_lists_parse_match_and_name_the_wrong_line() {
    let list =
        IpList::parse("# tor exits\n203.0.113.7\n198.51.100.0/24  # a block\n\n2001:db8::/32\n198.51.100.128/25\n")
            .expect("parses");
    assert_eq!(list.len(), 4);
    for (ip, listed) in [
        ("203.0.113.7", true),
        ("203.0.113.8", false),
        ("198.51.100.0", true),
        ("198.51.100.255", true),
        ("198.51.101.0", false),
        ("2001:db8:1::5", true),
        ("2001:db9::1", false),
        ("::ffff:203.0.113.7", true),
    ] {
        assert_eq!(list.contains(ip.parse().expect("ip")), listed, "{ip}");
    }
    let everything = IpList::parse("0.0.0.0/0").expect("parses");
    assert!(everything.contains("8.8.8.8".parse().expect("ip")));
    assert!(!everything.contains("2001:db8::1".parse().expect("ip")), "an IPv4 block holds no IPv6 address");
    for (text, line, words) in [
        ("10.0.0.1\n300.1.2.3\n", 2, "is not an IP address"),
        ("10.0.0.0/33", 1, "prefix length must be 0 to 32"),
        ("\n\n10.0.0.1/24", 3, "host bits set; the block is 10.0.0.0/24"),
        ("2001:db8::/129", 1, "0 to 128"),
        ("10.0.0.0/+8", 1, "prefix length"),
        ("example.com", 1, "is not an IP address"),
    ] {
        let e = IpList::parse(text).expect_err(text);
        assert_eq!(e.line, line, "{text}");
        assert!(e.message.contains(words), "{text}: {}", e.message);
    }
}

#[test]
fn domain_lists_cover_subdomains_and_name_the_wrong_line() {
    let list = DomainList::parse("mailinator.com\n# comment\nTempMail.ORG.\n").expect("parses");
    assert_eq!(list.len(), 2);
    assert!(list.contains("mailinator.com"));
    assert!(list.contains("eu.mailinator.com"));
    assert!(list.contains("tempmail.org"));
    assert!(!list.contains("notmailinator.com"));
    assert!(!list.contains("com"));
    for (text, line) in
        [("ok.example\nnot a domain\n", 2), ("localhost", 1), ("-bad.example", 1), ("bücher.example", 1)]
    {
        assert_eq!(DomainList::parse(text).expect_err(text).line, line, "{text}");
    }
}

#[test]
fn networks_are_slash_24_and_slash_48() {
    let net = |ip: &str| network_of(ip.parse().expect("ip"));
    assert_eq!(net("203.0.113.7"), net("203.0.113.200"));
    assert_ne!(net("203.0.113.7"), net("203.0.114.7"));
    assert_eq!(net("2001:db8:1:2::1"), net("2001:db8:1:ffff::9"));
    assert_ne!(net("2001:db8:1::1"), net("2001:db8:2::1"));
}

#[test]
fn snapshots_parse_with_relative_times_and_name_bad_fields() {
    let s = Snapshot::from_json(
        r#"{"kind": "mfa_recovery", "channel": "phone", "now": "2026-11-02T14:00:00Z", "signals": [
            {"fact": "sim_swap", "changed_at": "-5h", "source": "sim_swap:camara"},
            {"fact": "changed", "what": "contact", "changed_at": "2026-11-01T14:00:00Z"},
            {"fact": "login_history", "successes": 3, "ip": "seen", "device": null}]}"#,
    )
    .expect("parses");
    assert_eq!(s.signals.len(), 3);
    assert_eq!(s.signals[0].fact, Fact::SimSwap { changed_at: Some(now() - Duration::hours(5)) });
    assert_eq!(s.signals[0].source, "sim_swap:camara");
    assert_eq!(s.signals[1].source, "corpus");
    assert_eq!(s.signals[2].fact, Fact::LoginHistory { successes: 3, ip: Some(Familiarity::Seen), device: None });
    let field = |text: &str| Snapshot::from_json(text).expect_err(text).field;
    let base = |signal: &str| {
        format!(
            r#"{{"kind": "password_reset", "channel": "web", "now": "2026-11-02T14:00:00Z", "signals": [{signal}]}}"#
        )
    };
    assert_eq!(field(&base(r#"{"fact": "teleport"}"#)), "signals/0/fact");
    assert_eq!(
        field(&base(r#"{"fact": "requests", "subject": "planet", "count": 1, "window_minutes": 5}"#)),
        "signals/0/subject"
    );
    assert_eq!(field(&base(r#"{"fact": "requests", "subject": "ip", "window_minutes": 5}"#)), "signals/0/count");
    assert_eq!(field(&base(r#"{"fact": "sim_swap", "changed_at": "-5y"}"#)), "signals/0/changed_at");
    assert_eq!(field(&base(r#"{"fact": "sim_swap", "changed_at": "-é"}"#)), "signals/0/changed_at");
    assert_eq!(field(&base(r#"{"fact": "sim_swap", "changed_at": "-99999999999d"}"#)), "signals/0/changed_at");
    assert_eq!(
        field(&base(r#"{"fact": "hour_of_day", "hour": 24, "share_permille": 1, "samples": 1}"#)),
        "signals/0/hour"
    );
    assert_eq!(field(&base(r#"{"fact": "observed", "what": "urgency", "extra": 1}"#)), "signals/0/extra");
    assert_eq!(field(r#"{"kind": "password_reset", "channel": "web"}"#), "now");
    assert_eq!(field("not json"), "");
}

fn case(kind: CaseKind) -> Case {
    let new = NewCase { kind, channel: Channel::Phone, summary: None };
    let (mut case, _) = Case::open(
        CaseId::from_uuid(Uuid::from_u128(7)),
        TenantId::from_uuid(Uuid::from_u128(9)),
        &TenantSettings::default(),
        new,
        Actor::System,
        now(),
    );
    case.state = CaseState::Verifying;
    case.customer_id = Some(CustomerId::from_uuid(Uuid::from_u128(11)));
    case
}

fn assess(case: &Case, score: u8, band: RiskBand) -> Result<(Case, Vec<CaseEvent>), CaseError> {
    apply(
        case,
        CaseCommand::AssessRisk { score, band, reasons: Vec::new(), policy_version: Some(3) },
        Actor::System,
        now(),
    )
}

fn supervisor(n: u128) -> Actor {
    Actor::Staff { id: StaffId::from_uuid(Uuid::from_u128(100 + n)), role: Role::Supervisor }
}

#[test]
fn an_assessment_on_the_case_routes_it_and_its_band_never_goes_down() {
    let start = case(CaseKind::PasswordReset);
    let (high, events) = assess(&start, 62, RiskBand::High).expect("assessed");
    assert_eq!(high.risk.as_ref().map(|r| (r.score, r.band)), Some((62, RiskBand::High)));
    assert_eq!(high.tier, Tier::SUPERVISOR);
    assert!(high.approval_required);
    assert!(matches!(
        events[0],
        CaseEvent::RiskAssessed { route: RouteAction::SupervisorApproval, policy_version: Some(3), .. }
    ));
    assert!(matches!(events[1], CaseEvent::Escalated { to: Tier::SUPERVISOR, .. }));
    // A later, lower score is recorded, but the band in force stays high.
    let (later, events) = assess(&high, 10, RiskBand::Low).expect("assessed");
    assert_eq!(later.risk.as_ref().map(|r| (r.score, r.band)), Some((10, RiskBand::High)));
    assert!(matches!(events[..], [CaseEvent::RiskAssessed { band: RiskBand::Low, band_in_force: RiskBand::High, .. }]));
    // The same answer again records nothing.
    let (same, events) = assess(&later, 10, RiskBand::Low).expect("assessed");
    assert!(events.is_empty());
    assert_eq!(same.version, later.version);
    // Executing still needs the approval the risk asked for.
    let (decided, _) =
        apply(&later, CaseCommand::Decide { approve: true, reason: "verified".into() }, supervisor(1), now())
            .expect("decide");
    assert_eq!(apply(&decided, CaseCommand::Execute, supervisor(1), now()), Err(CaseError::ApprovalRequired));
}

#[test]
fn a_critical_risk_holds_every_step_toward_an_action_but_not_a_lockdown() {
    let (held, _) = assess(&case(CaseKind::PasswordReset), 85, RiskBand::Critical).expect("assessed");
    assert_eq!(held.tier, Tier::SECURITY);
    let analyst = Actor::Staff { id: StaffId::from_uuid(Uuid::from_u128(300)), role: Role::SecurityAnalyst };
    let hold = Err(CaseError::RiskHold { score: 85 });
    assert_eq!(
        apply(&held, CaseCommand::Decide { approve: true, reason: "r".into() }, analyst, now()).map(|_| ()),
        hold
    );
    let mut decided = held.clone();
    decided.state = CaseState::Decided;
    assert_eq!(apply(&decided, CaseCommand::Execute, analyst, now()).map(|_| ()), hold);
    assert_eq!(apply(&decided, CaseCommand::RequestApproval { reason: "r".into() }, analyst, now()).map(|_| ()), hold);
    // Refusing, cancelling and notes still work.
    assert!(apply(&held, CaseCommand::Decide { approve: false, reason: "impostor".into() }, analyst, now()).is_ok());
    assert!(apply(&held, CaseCommand::Cancel { reason: "r".into() }, analyst, now()).is_ok());
    // A compromised-account case at critical goes ahead with approval: it is the lockdown.
    let (lockdown, _) = assess(&case(CaseKind::CompromisedAccount), 90, RiskBand::Critical).expect("assessed");
    assert!(apply(&lockdown, CaseCommand::Decide { approve: true, reason: "r".into() }, analyst, now()).is_ok());
}

#[test]
fn observations_are_kept_once_and_follow_the_worker_rules() {
    let start = case(CaseKind::PasswordReset);
    let agent = Actor::Staff { id: StaffId::from_uuid(Uuid::from_u128(1)), role: Role::Agent };
    let tells = vec![Observation::Urgency, Observation::Urgency, Observation::RefusesCode];
    let (seen, events) = apply(&start, CaseCommand::Observe { tells }, agent, now()).expect("observed");
    assert_eq!(seen.observed.len(), 2);
    assert_eq!(events, [CaseEvent::Observed { tells: vec![Observation::Urgency, Observation::RefusesCode] }]);
    let (again, events) =
        apply(&seen, CaseCommand::Observe { tells: vec![Observation::Urgency] }, agent, now()).expect("observed");
    assert!(events.is_empty());
    assert_eq!(again.version, seen.version);
    assert!(matches!(apply(&seen, CaseCommand::Observe { tells: vec![] }, agent, now()), Err(CaseError::Invalid(_))));
    // Like any work on the case: not beyond one's tier, not on a case assigned to someone else.
    let mut higher = start.clone();
    higher.tier = Tier::SECURITY;
    let tells = vec![Observation::Urgency];
    assert!(matches!(
        apply(&higher, CaseCommand::Observe { tells: tells.clone() }, agent, now()),
        Err(CaseError::BeyondTier { .. })
    ));
    let mut theirs = start.clone();
    theirs.assignee = Some(StaffId::from_uuid(Uuid::from_u128(2)));
    assert_eq!(apply(&theirs, CaseCommand::Observe { tells }, agent, now()), Err(CaseError::AssignedElsewhere));
}

#[test]
fn a_step_up_asks_for_one_more_proof_by_another_method() {
    let policy = AssurancePolicy::default();
    let stepped = policy.with_step_up(CaseKind::PasswordReset);
    let available: Available = [Method::Email, Method::Sms, Method::Totp].into_iter().collect();
    let email = vec![Evidence::new(Method::Email, now())];
    assert!(evaluate(&policy, CaseKind::PasswordReset, &email, &available, now()).satisfied);
    let short = evaluate(&stepped, CaseKind::PasswordReset, &email, &available, now());
    assert!(!short.satisfied);
    assert!(short.next[0].iter().all(|slot| !slot.contains(&Method::Email)), "{:?}", short.next);
    let twice = vec![Evidence::new(Method::Email, now()), Evidence::new(Method::Email, now())];
    assert!(
        !evaluate(&stepped, CaseKind::PasswordReset, &twice, &available, now()).satisfied,
        "the same method twice is one proof"
    );
    let two = vec![Evidence::new(Method::Email, now()), Evidence::new(Method::Totp, now())];
    assert!(evaluate(&stepped, CaseKind::PasswordReset, &two, &available, now()).satisfied);
    // The floors still hold under a step-up: knowledge never counts.
    let knowledge = vec![Evidence::new(Method::Email, now()), Evidence::new(Method::Knowledge, now())];
    assert!(!evaluate(&stepped, CaseKind::PasswordReset, &knowledge, &available, now()).satisfied);
}
