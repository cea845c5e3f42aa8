use chrono::{TimeZone, Utc};
use uuid::Uuid;

use super::*;

fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).single().unwrap_or_default()
}

fn agent() -> Actor {
    Actor::Staff { id: StaffId::from_uuid(Uuid::from_u128(1)), role: Role::Agent }
}

fn supervisor(n: u128) -> Actor {
    Actor::Staff { id: StaffId::from_uuid(Uuid::from_u128(100 + n)), role: Role::Supervisor }
}

fn case_in(state: CaseState, kind: CaseKind) -> Case {
    let new = NewCase { kind, channel: Channel::Phone, summary: None };
    let (mut case, _) = Case::open(
        CaseId::from_uuid(Uuid::from_u128(7)),
        TenantId::from_uuid(Uuid::from_u128(9)),
        &TenantSettings::default(),
        new,
        agent(),
        t0(),
    );
    case.state = state;
    if !matches!(state, CaseState::Open | CaseState::Identifying) {
        case.customer_id = Some(CustomerId::from_uuid(Uuid::from_u128(11)));
    }
    if state == CaseState::AwaitingApproval {
        case.approval_requested_by = Some(agent());
    }
    if state == CaseState::CoolingOff {
        case.cooling_off_until = Some(t0() + Duration::hours(24));
    }
    case
}

fn every_command() -> Vec<CaseCommand> {
    vec![
        CaseCommand::Assign { assignee: None },
        CaseCommand::Escalate { tier: Tier::SECURITY, reason: "r".into() },
        CaseCommand::ChangeChannel { channel: Channel::Chat },
        CaseCommand::AddNote { text: "n".into() },
        CaseCommand::StartIdentification,
        CaseCommand::Identify { customer_id: CustomerId::from_uuid(Uuid::from_u128(11)) },
        CaseCommand::Decide { approve: true, reason: "r".into() },
        CaseCommand::RequestApproval { reason: "r".into() },
        CaseCommand::Approve { reason: "r".into() },
        CaseCommand::Deny { reason: "r".into() },
        CaseCommand::Execute,
        CaseCommand::Complete { cooling_off_hours: None },
        CaseCommand::Release,
        CaseCommand::Repudiate { reason: "r".into() },
        CaseCommand::Cancel { reason: "r".into() },
        CaseCommand::Expire,
        CaseCommand::AssessRisk {
            score: 60,
            band: crate::risk::RiskBand::High,
            reasons: Vec::new(),
            policy_version: None,
        },
        CaseCommand::Observe { tells: vec![crate::risk::Observation::Urgency] },
        CaseCommand::RetryAction { action: None },
        CaseCommand::RollBack { changes: vec!["email a***@example.com added".into()] },
        CaseCommand::RecordAction {
            action: crate::action::ActionKind::PasswordReset,
            outcome: crate::action::ActionOutcome::LinkSent,
            detail: None,
        },
    ]
}

/// The state each (state, command) pair leads to for a password reset (no approval needed),
/// given by a supervisor who did not ask for approval, long after every deadline. `None` is a
/// refusal with `WrongState`.
fn expected(state: CaseState, command: &str) -> Option<CaseState> {
    use CaseState as S;
    if state.is_terminal() {
        return None;
    }
    match (state, command) {
        (_, "assign" | "escalate" | "change_channel" | "add_note" | "observe") => Some(state),
        (s, "assess_risk") if s.is_before_execution() => Some(state),
        (S::Open, "start_identification") => Some(S::Identifying),
        (S::Identifying, "identify") => Some(S::Verifying),
        (S::Verifying, "decide") => Some(S::Decided),
        (S::Decided, "request_approval") => Some(S::AwaitingApproval),
        (S::AwaitingApproval, "approve") => Some(S::Executing),
        (S::AwaitingApproval, "deny") => Some(S::Rejected),
        (S::Decided, "execute") => Some(S::Executing),
        (S::Executing, "complete") => Some(S::Resolved),
        (S::Executing, "retry_action") => Some(S::Executing),
        (S::CoolingOff, "release") => Some(S::Resolved),
        (S::CoolingOff, "repudiate") => Some(S::Cancelled),
        (s, "cancel" | "expire") if s.is_before_execution() => {
            Some(S::Cancelled).map(|c| if command == "expire" { S::Expired } else { c })
        }
        _ => None,
    }
}

#[test]
fn every_command_in_every_state() {
    // SECURITY.md G4: steps run in order; a command in the wrong state is refused.
    let late = t0() + Duration::days(30);
    for &state in CaseState::ALL {
        for command in every_command() {
            let name = command.name();
            let case = case_in(state, CaseKind::PasswordReset);
            let result = apply(&case, command, supervisor(1), late);
            match (expected(state, name), result) {
                (Some(to), Ok((next, events))) => {
                    assert_eq!(next.state, to, "{state} × {name}");
                    assert_eq!(next.version, case.version + 1, "{state} × {name}");
                    assert!(!events.is_empty() || name == "change_channel", "{state} × {name}: no event");
                }
                // The right state, the wrong actor: staff never record an action's steps.
                (None, Err(CaseError::RegainOnly)) if state == CaseState::Executing && name == "record_action" => {}
                (None, Err(CaseError::WrongState { state: s, command: c })) => {
                    assert_eq!((s, c), (state, name));
                }
                (want, got) => panic!("{state} × {name}: expected {want:?}, got {got:?}"),
            }
        }
    }
}

#[test]
fn the_happy_path_leaves_a_timeline() {
    let case = case_in(CaseState::Open, CaseKind::PasswordReset);
    let steps = [
        CaseCommand::Assign { assignee: Some(StaffId::from_uuid(Uuid::from_u128(1))) },
        CaseCommand::StartIdentification,
        CaseCommand::Identify { customer_id: CustomerId::from_uuid(Uuid::from_u128(11)) },
        CaseCommand::Decide { approve: true, reason: "code to registered phone".into() },
        CaseCommand::Execute,
        CaseCommand::Complete { cooling_off_hours: None },
    ];
    let mut case = case;
    let mut names = Vec::new();
    for step in steps {
        let (next, events) = apply(&case, step, agent(), t0()).unwrap();
        names.extend(events.iter().map(CaseEvent::name));
        case = next;
    }
    assert_eq!(case.state, CaseState::Resolved);
    assert_eq!(case.first_response_at, Some(t0()));
    assert_eq!(names.iter().filter(|n| **n == "case.state_changed").count(), 5);
    assert!(names.contains(&"case.customer_identified"));
}

#[test]
fn only_regain_and_the_customer_record_an_actions_steps() {
    use crate::action::{ActionKind, ActionOutcome};
    let mut case = case_in(CaseState::Executing, CaseKind::PasswordReset);
    let customer = CustomerId::from_uuid(Uuid::from_u128(11));
    case.customer_id = Some(customer);
    let step = |outcome| CaseCommand::RecordAction {
        action: ActionKind::PasswordReset,
        outcome,
        detail: Some("email-0 (a***@example.com)".into()),
    };
    let (next, events) = apply(&case, step(ActionOutcome::LinkSent), Actor::System, t0()).unwrap();
    assert_eq!(next.state, CaseState::Executing);
    assert_eq!(events.iter().map(CaseEvent::name).collect::<Vec<_>>(), ["case.action_link_sent"]);
    let (_, events) = apply(&case, step(ActionOutcome::Performed), Actor::Customer { id: customer }, t0()).unwrap();
    assert_eq!(events[0].name(), "case.action_performed");
    let stranger = Actor::Customer { id: CustomerId::from_uuid(Uuid::from_u128(12)) };
    assert_eq!(apply(&case, step(ActionOutcome::Performed), stranger, t0()), Err(CaseError::RegainOnly));
    assert_eq!(apply(&case, step(ActionOutcome::Performed), agent(), t0()), Err(CaseError::RegainOnly));
}

#[test]
fn approval_is_required_and_needs_another_person() {
    // SECURITY.md G3.
    let decided = case_in(CaseState::Decided, CaseKind::MfaRecovery);
    assert_eq!(apply(&decided, CaseCommand::Execute, agent(), t0()), Err(CaseError::ApprovalRequired));

    let (waiting, _) =
        apply(&decided, CaseCommand::RequestApproval { reason: "lost phone".into() }, supervisor(1), t0()).unwrap();
    let approve = || CaseCommand::Approve { reason: "evidence checked".into() };
    assert_eq!(apply(&waiting, approve(), supervisor(1), t0()), Err(CaseError::SelfApproval));
    assert_eq!(apply(&waiting, approve(), agent(), t0()), Err(CaseError::ApproverRole));
    let api_key = Actor::ApiKey { id: ApiKeyId::from_uuid(Uuid::from_u128(5)) };
    assert_eq!(apply(&waiting, approve(), api_key, t0()), Err(CaseError::ApproverRole));
    let (executing, _) = apply(&waiting, approve(), supervisor(2), t0()).unwrap();
    assert_eq!(executing.state, CaseState::Executing);
}

#[test]
fn cooling_off_holds_until_its_time() {
    // SECURITY.md G5: nothing before T; "this wasn't me" cancels and escalates.
    let executing = case_in(CaseState::Executing, CaseKind::ContactChange);
    let (cooling, events) =
        apply(&executing, CaseCommand::Complete { cooling_off_hours: Some(24) }, agent(), t0()).unwrap();
    assert_eq!(cooling.state, CaseState::CoolingOff);
    assert!(events.iter().any(|e| matches!(e, CaseEvent::CoolingOffStarted { .. })));
    let until = t0() + Duration::hours(24);
    let early = until - Duration::seconds(1);
    assert_eq!(apply(&cooling, CaseCommand::Release, agent(), early), Err(CaseError::StillCoolingOff { until }));
    assert_eq!(apply(&cooling, CaseCommand::Release, agent(), until).unwrap().0.state, CaseState::Resolved);

    let customer = Actor::Customer { id: CustomerId::from_uuid(Uuid::from_u128(11)) };
    let (cancelled, events) =
        apply(&cooling, CaseCommand::Repudiate { reason: "this wasn't me".into() }, customer, early).unwrap();
    assert_eq!(cancelled.state, CaseState::Cancelled);
    assert_eq!(cancelled.tier, Tier::SECURITY);
    assert!(events.iter().any(|e| matches!(e, CaseEvent::Escalated { .. })));
}

#[test]
fn expiry_waits_for_the_deadline() {
    let case = case_in(CaseState::Verifying, CaseKind::PasswordReset);
    let deadline = case.expires_at;
    assert!(matches!(
        apply(&case, CaseCommand::Expire, Actor::System, deadline - Duration::seconds(1)),
        Err(CaseError::NotExpired { .. })
    ));
    assert_eq!(apply(&case, CaseCommand::Expire, Actor::System, deadline).unwrap().0.state, CaseState::Expired);
}

#[test]
fn escalation_only_goes_up_and_returns_the_case_to_the_queue() {
    let mut case = case_in(CaseState::Verifying, CaseKind::PasswordReset);
    case.assignee = Some(StaffId::from_uuid(Uuid::from_u128(1)));
    let (up, _) = apply(
        &case,
        CaseCommand::Escalate { tier: Tier::SUPERVISOR, reason: "caller pressured".into() },
        agent(),
        t0(),
    )
    .unwrap();
    assert_eq!((up.tier, up.assignee), (Tier::SUPERVISOR, None));
    assert_eq!(
        apply(&up, CaseCommand::Escalate { tier: Tier::FRONT_LINE, reason: "x".into() }, supervisor(1), t0()),
        Err(CaseError::NotAnEscalation { current: 2 })
    );
}

#[test]
fn reasons_are_validated() {
    let case = case_in(CaseState::Verifying, CaseKind::PasswordReset);
    let err = apply(&case, CaseCommand::Decide { approve: true, reason: "  ".into() }, agent(), t0()).unwrap_err();
    assert!(matches!(err, CaseError::Invalid(ValidationError { ref field, .. }) if field == "reason"));
    let err = apply(&case, CaseCommand::AddNote { text: "x".repeat(4001) }, agent(), t0()).unwrap_err();
    assert!(matches!(err, CaseError::Invalid(_)));
    assert!(NewCase::parse("password_reset", "fax", None).is_err());
    assert!(NewCase::parse("password_reset", "phone", Some("locked out")).is_ok());
}

#[test]
fn the_decider_cannot_approve_their_own_decision() {
    // SECURITY.md G3: compared by person, not by role or by who filed the request.
    let verifying = case_in(CaseState::Verifying, CaseKind::MfaRecovery);
    let (decided, _) =
        apply(&verifying, CaseCommand::Decide { approve: true, reason: "two proofs".into() }, supervisor(1), t0())
            .unwrap();
    let api_key = Actor::ApiKey { id: ApiKeyId::from_uuid(Uuid::from_u128(5)) };
    let (waiting, _) =
        apply(&decided, CaseCommand::RequestApproval { reason: "please".into() }, api_key, t0()).unwrap();
    let approve = || CaseCommand::Approve { reason: "ok".into() };
    assert_eq!(apply(&waiting, approve(), supervisor(1), t0()), Err(CaseError::SelfApproval));
    // The same person after a role change is still the same person.
    let promoted = Actor::Staff { id: StaffId::from_uuid(Uuid::from_u128(101)), role: Role::SecurityAnalyst };
    assert_eq!(apply(&waiting, approve(), promoted, t0()), Err(CaseError::SelfApproval));
    assert_eq!(apply(&waiting, approve(), supervisor(2), t0()).unwrap().0.state, CaseState::Executing);
}

#[test]
fn staff_work_their_tier_and_agents_their_own_cases() {
    let mut case = case_in(CaseState::Verifying, CaseKind::PasswordReset);
    case.tier = Tier::SECURITY;
    let decide = || CaseCommand::Decide { approve: true, reason: "ok".into() };
    assert_eq!(
        apply(&case, decide(), supervisor(1), t0()),
        Err(CaseError::BeyondTier { case_tier: 3, worker_tier: 2 })
    );
    // Anyone who can see it may still leave a note.
    assert!(apply(&case, CaseCommand::AddNote { text: "caller rang again".into() }, agent(), t0()).is_ok());
    let analyst = Actor::Staff { id: StaffId::from_uuid(Uuid::from_u128(300)), role: Role::SecurityAnalyst };
    assert!(apply(&case, decide(), analyst, t0()).is_ok());

    let mut mine = case_in(CaseState::Verifying, CaseKind::PasswordReset);
    mine.assignee = Some(StaffId::from_uuid(Uuid::from_u128(2)));
    assert_eq!(apply(&mine, decide(), agent(), t0()), Err(CaseError::AssignedElsewhere));
    assert_eq!(
        apply(&mine, CaseCommand::Assign { assignee: Some(StaffId::from_uuid(Uuid::from_u128(1))) }, agent(), t0()),
        Err(CaseError::AssignedElsewhere),
        "an agent cannot take another agent's case"
    );
    assert!(apply(&mine, decide(), supervisor(1), t0()).is_ok());
}

#[test]
fn a_command_that_changes_nothing_leaves_no_trace() {
    let case = case_in(CaseState::Verifying, CaseKind::PasswordReset);
    let (same, events) = apply(&case, CaseCommand::ChangeChannel { channel: Channel::Phone }, agent(), t0()).unwrap();
    assert!(events.is_empty());
    assert_eq!(same, case, "no new version, no first response recorded");
}

#[test]
fn command_names_are_listed_once_each() {
    let names: Vec<&str> = every_command().iter().map(CaseCommand::name).chain(["expire"]).collect();
    let mut listed = COMMAND_NAMES.to_vec();
    let mut given = names.clone();
    listed.sort_unstable();
    given.sort_unstable();
    given.dedup();
    assert_eq!(listed, given);
}

#[test]
fn only_security_staff_roll_back_a_locked_down_account() {
    // SECURITY.md L0: the analyst selects what is undone; an agent cannot.
    let case = case_in(CaseState::Executing, CaseKind::CompromisedAccount);
    let changes = vec!["email a***@example.com added 2026-11-30".to_owned(), "password changed".to_owned()];
    let agent = Actor::Staff { id: StaffId::from_uuid(Uuid::from_u128(7)), role: Role::Agent };
    let refused = apply(&case, CaseCommand::RollBack { changes: changes.clone() }, agent, t0());
    assert!(matches!(refused, Err(CaseError::BeyondTier { .. } | CaseError::SecurityOnly)), "{refused:?}");
    let analyst = Actor::Staff { id: StaffId::from_uuid(Uuid::from_u128(8)), role: Role::SecurityAnalyst };
    let (next, events) = apply(&case, CaseCommand::RollBack { changes }, analyst, t0()).unwrap();
    assert_eq!(next.state, CaseState::Executing);
    assert_eq!(events.iter().filter(|e| e.name() == "case.action_rolled_back").count(), 2);
    assert!(apply(&case, CaseCommand::RollBack { changes: Vec::new() }, analyst, t0()).is_err());
    let reset = case_in(CaseState::Executing, CaseKind::PasswordReset);
    let wrong = apply(&reset, CaseCommand::RollBack { changes: vec!["x".into()] }, analyst, t0());
    assert!(matches!(wrong, Err(CaseError::WrongState { .. })));
}

#[test]
fn a_retry_names_only_the_cases_own_action_or_an_owed_deactivation() {
    use crate::action::{ActionKind, ActionOutcome};
    // SECURITY.md L0: on a compromised-account case, staff may have a deactivation the
    // account system refused sent again; no other case kind queues one, and no case another
    // kind's action.
    let analyst = Actor::Staff { id: StaffId::from_uuid(Uuid::from_u128(8)), role: Role::SecurityAnalyst };
    let lockdown = case_in(CaseState::Executing, CaseKind::CompromisedAccount);
    let again = CaseCommand::RetryAction { action: Some(ActionKind::Deactivate) };
    let (next, events) = apply(&lockdown, again.clone(), analyst, t0()).unwrap();
    assert_eq!(next.state, CaseState::Executing);
    assert!(
        matches!(
            events.as_slice(),
            [CaseEvent::Action { action: ActionKind::Deactivate, outcome: ActionOutcome::Queued, .. }]
        ),
        "{events:?}"
    );
    let (_, own) = apply(&lockdown, CaseCommand::RetryAction { action: None }, analyst, t0()).unwrap();
    assert!(matches!(own.as_slice(), [CaseEvent::Action { action: ActionKind::Lockdown, .. }]), "{own:?}");
    let unlock = case_in(CaseState::Executing, CaseKind::AccountUnlock);
    assert!(matches!(apply(&unlock, again, analyst, t0()), Err(CaseError::WrongState { .. })));
    let other = CaseCommand::RetryAction { action: Some(ActionKind::PasswordReset) };
    assert!(matches!(apply(&lockdown, other, analyst, t0()), Err(CaseError::WrongState { .. })));
}
