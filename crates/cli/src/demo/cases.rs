//! The demo's cases: scripts that open a case and move it through the real state machine
//! (`open_case` and `run_command`, as the API does), acting as the seeded staff, so each state
//! a desk sees is there to look at, with notes, escalations, approvals and a repudiation.

use std::collections::HashMap;

use anyhow::Context as _;
use regain_core::case::{CaseCommand, CaseEvent, Channel, NewCase, Tier};
use regain_core::identify::ClaimedIdentity;
use regain_core::policy::Method;
use regain_core::{CaseId, TenantId};
use regain_server::auth::Principal;
use regain_server::routes::cases::open_case;
use regain_server::routes::commands::run_command;
use regain_server::routes::verification::identify_caller;
use regain_server::AppState;
use regain_store::RequestContext;
use regain_store::{AttemptContext, NewAttempt};

use crate::demo::roster::{self, Who};

/// One step of a script, with the staff and customers named by their place in the roster.
enum Step {
    Assign(Who),
    Start,
    Identify(usize),
    Note(&'static str),
    Escalate(i64, &'static str),
    MoveTo(&'static str),
    /// A proof the customer gave (demo history: recorded as if it had happened).
    Proof(&'static str),
    Decide(bool, &'static str),
    RequestApproval(&'static str),
    Approve(&'static str),
    Deny(&'static str),
    Execute,
    /// A contact change's new phone, proposed and confirmed by the code sent to it.
    NewPhone(&'static str),
    /// Regain's action worker runs what is queued (the reset link, the unlock, …).
    Perform,
    Complete(Option<u32>),
    Repudiate(&'static str),
    Cancel(&'static str),
}

struct Script {
    kind: &'static str,
    channel: &'static str,
    summary: &'static str,
    opened_by: Who,
    steps: &'static [(Who, Step)],
}

use Step::*;
use Who::*;

/// The case whose timeline the banner shows: resolved after a supervisor's approval.
pub const TIMELINE_CASE: usize = 12;

const SCRIPTS: &[Script] = &[
    // open
    Script {
        kind: "password_reset",
        channel: "phone",
        summary: "Forgot password after a long holiday",
        opened_by: Integration,
        steps: &[],
    },
    Script {
        kind: "username_recovery",
        channel: "web",
        summary: "Cannot remember which username was used at sign-up",
        opened_by: Integration,
        steps: &[(Agent1, Note("Came in through the web form; customer asked for a call after 5pm."))],
    },
    Script {
        kind: "account_unlock",
        channel: "chat",
        summary: "Account locked after too many attempts",
        opened_by: Agent2,
        steps: &[(Agent2, Assign(Agent2))],
    },
    // identifying
    Script {
        kind: "password_reset",
        channel: "phone",
        summary: "Locked out after a phone change",
        opened_by: Agent1,
        steps: &[(Agent1, Assign(Agent1)), (Agent1, Start)],
    },
    Script {
        kind: "mfa_recovery",
        channel: "chat",
        summary: "Lost the phone with the authenticator app",
        opened_by: Agent2,
        steps: &[
            (Agent2, Start),
            (Agent2, Escalate(2, "Caller cannot answer the security questions; needs a supervisor")),
            (Supervisor1, Assign(Supervisor1)),
        ],
    },
    // verifying
    Script {
        kind: "account_unlock",
        channel: "email",
        summary: "Locked out; asks for an unlock by email",
        opened_by: Integration,
        steps: &[(Agent1, Assign(Agent1)), (Agent1, Start), (Agent1, Identify(7))],
    },
    Script {
        kind: "contact_change",
        channel: "phone",
        summary: "Wants to replace an old email address",
        opened_by: Agent2,
        steps: &[
            (Agent2, Start),
            (Agent2, Identify(12)),
            (Agent2, Note("Date of birth matches; sending a code to the phone on file.")),
        ],
    },
    // decided
    Script {
        kind: "password_reset",
        channel: "web",
        summary: "Password manager lost its vault",
        opened_by: Agent1,
        steps: &[
            (Agent1, Start),
            (Agent1, Identify(1)),
            (Agent1, Proof("sms")),
            (Agent1, Decide(true, "Verified with a one-time code to the phone on file")),
        ],
    },
    // awaiting approval
    Script {
        kind: "mfa_recovery",
        channel: "phone",
        summary: "New phone; authenticator not transferred",
        opened_by: Agent1,
        steps: &[
            (Agent1, Start),
            (Agent1, Identify(3)),
            (Agent1, Proof("totp")),
            (Agent1, Proof("email")),
            (Agent1, Decide(true, "Verified with the authenticator app and a code to the registered email")),
            (Agent1, RequestApproval("Removing the second factor needs a second pair of eyes")),
        ],
    },
    // executing
    Script {
        kind: "contact_change",
        channel: "chat",
        summary: "Moving to a new mobile number",
        opened_by: Agent2,
        steps: &[
            (Agent2, Start),
            (Agent2, Identify(15)),
            (Agent2, Proof("email")),
            (Agent2, Decide(true, "Confirmed by a code to the registered email")),
            (Agent2, NewPhone("+1 415 555 0142")),
            (Agent2, RequestApproval("Contact change on a verified account")),
            (Supervisor2, Approve("Callback to the number on file confirmed it")),
        ],
    },
    Script {
        kind: "compromised_account",
        channel: "phone",
        summary: "Unknown logins from abroad; customer suspects account takeover",
        opened_by: Integration,
        steps: &[
            (Analyst, Assign(Analyst)),
            (Analyst, Start),
            (Analyst, Identify(44)),
            (Analyst, Proof("sms")),
            (Analyst, Proof("email")),
            (Analyst, Decide(true, "Codes to the phone and email on file; login history shows credential stuffing")),
            (Analyst, RequestApproval("Lock down and reset all credentials")),
            (Analyst2, Approve("Evidence is clear; approve the lockdown")),
        ],
    },
    // cooling off
    Script {
        kind: "password_reset",
        channel: "phone",
        summary: "Forgot password; travelling",
        opened_by: Agent1,
        steps: &[
            (Agent1, Start),
            (Agent1, Identify(20)),
            (Agent1, Proof("email")),
            (Agent1, Decide(true, "Verified by code to the registered email")),
            (Agent1, Execute),
            (Agent1, Perform),
            (Agent1, Complete(Some(48))),
        ],
    },
    // resolved
    Script {
        kind: "mfa_recovery",
        channel: "email",
        summary: "Authenticator app reset by a phone upgrade",
        opened_by: Supervisor1,
        steps: &[
            (Supervisor1, Start),
            (Supervisor1, MoveTo("phone")),
            (Supervisor1, Identify(27)),
            (Supervisor1, Note("Moved to a phone call to verify by voice.")),
            (Supervisor1, Proof("email")),
            (Supervisor1, Proof("totp")),
            (Supervisor1, Decide(true, "Verified by a code to the registered email and the authenticator app")),
            (Supervisor1, RequestApproval("Second factor removal")),
            (Supervisor2, Approve("Checked the callback recording")),
            (Supervisor1, Perform),
        ],
    },
    Script {
        kind: "account_unlock",
        channel: "web",
        summary: "Locked after mistyping the password",
        opened_by: Integration,
        steps: &[
            (Agent2, Start),
            (Agent2, Identify(23)),
            (Agent2, Proof("email")),
            (Agent2, Decide(true, "Verified by code to the email on file")),
            (Agent2, Execute),
            (Agent2, Perform),
        ],
    },
    // rejected
    Script {
        kind: "password_reset",
        channel: "phone",
        summary: "Caller says they forgot their password",
        opened_by: Agent1,
        steps: &[
            (Agent1, Start),
            (Agent1, Note("Caller could not name any recent transaction.")),
            (Agent1, Decide(false, "Could not verify identity: knowledge checks failed")),
        ],
    },
    Script {
        kind: "contact_change",
        channel: "phone",
        summary: "Wants the phone number on file changed today",
        opened_by: Agent2,
        steps: &[
            (Agent2, Start),
            (Agent2, Identify(32)),
            (Agent2, Proof("email")),
            (Agent2, Decide(true, "Identifiers match; confirmed by a code to the registered email")),
            (Agent2, NewPhone("+1 415 555 0177")),
            (Agent2, RequestApproval("Contact change")),
            (Supervisor1, Deny("The caller could not say why the number on file stopped working; call back first")),
        ],
    },
    // cancelled
    Script {
        kind: "username_recovery",
        channel: "chat",
        summary: "Forgot username",
        opened_by: Agent1,
        steps: &[(Agent1, Cancel("Customer remembered their username during the chat"))],
    },
    Script {
        kind: "password_reset",
        channel: "email",
        summary: "Requests a password reset by email",
        opened_by: Integration,
        steps: &[
            (Agent2, Start),
            (Agent2, Identify(40)),
            (Agent2, Proof("sms")),
            (Agent2, Decide(true, "Verified by code to the registered phone")),
            (Agent2, Execute),
            (Agent2, Perform),
            (Agent2, Complete(Some(24))),
            (Agent2, Repudiate("The registered email answered: this wasn't me")),
        ],
    },
];

/// Runs every script; returns the case ids in script order.
pub async fn seed(
    state: &AppState,
    tenant: TenantId,
    principals: &HashMap<Who, Principal>,
) -> anyhow::Result<Vec<CaseId>> {
    let mut ids = Vec::with_capacity(SCRIPTS.len());
    for (n, script) in SCRIPTS.iter().enumerate() {
        let id = run_script(state, tenant, principals, script)
            .await
            .with_context(|| format!("seeding demo case {} ({})", n + 1, script.summary))?;
        ids.push(id);
    }
    Ok(ids)
}

async fn run_script(
    state: &AppState,
    tenant: TenantId,
    principals: &HashMap<Who, Principal>,
    script: &Script,
) -> anyhow::Result<CaseId> {
    let principal = |who: Who| principals.get(&who).with_context(|| format!("no demo principal for {who:?}"));
    let new = NewCase::parse(script.kind, script.channel, Some(script.summary))?;
    let case = open_case(state, tenant, new, principal(script.opened_by)?.actor, &RequestContext::default()).await?;
    let id = case.id.to_string();
    for (who, step) in script.steps {
        if let Identify(i) = step {
            // As an agent does it: from what the caller claims (their name and username).
            let claimed = ClaimedIdentity {
                full_name: Some(roster::customer_full_name(*i).to_owned()),
                username: Some(roster::customer_username(*i).to_owned()),
                ..ClaimedIdentity::default()
            };
            let answer = identify_caller(state, tenant, &id, claimed, principal(*who)?.actor, None)
                .await
                .with_context(|| format!("identification of demo customer {i}"))?;
            if answer.outcome != "identified" {
                anyhow::bail!("demo customer {i} was not identified ({})", answer.outcome);
            }
            continue;
        }
        if let NewPhone(phone) = step {
            new_phone(state, tenant, principal(*who)?, &case.id, phone).await.context("the new phone")?;
            continue;
        }
        if let Perform = step {
            regain_server::recovery::perform_due(state).await.context("performing the queued actions")?;
            continue;
        }
        if let Proof(method) = step {
            record_proof(state, tenant, principal(*who)?, &case.id, method)
                .await
                .with_context(|| format!("proof by {method}"))?;
            continue;
        }
        let command = match step {
            Assign(to) => CaseCommand::Assign { assignee: principal(*to)?.staff_id },
            Start => CaseCommand::StartIdentification,
            Identify(_) | Proof(_) | Perform | NewPhone(_) => continue,
            Note(text) => CaseCommand::AddNote { text: (*text).to_owned() },
            Escalate(tier, reason) => {
                CaseCommand::Escalate { tier: Tier::new("tier", *tier)?, reason: (*reason).to_owned() }
            }
            MoveTo(channel) => CaseCommand::ChangeChannel { channel: Channel::parse("channel", channel)? },
            Decide(approve, reason) => CaseCommand::Decide { approve: *approve, reason: (*reason).to_owned() },
            RequestApproval(reason) => CaseCommand::RequestApproval { reason: (*reason).to_owned() },
            Approve(reason) => CaseCommand::Approve { reason: (*reason).to_owned() },
            Deny(reason) => CaseCommand::Deny { reason: (*reason).to_owned() },
            Execute => CaseCommand::Execute,
            Complete(hours) => CaseCommand::Complete { cooling_off_hours: *hours },
            Repudiate(reason) => CaseCommand::Repudiate { reason: (*reason).to_owned() },
            Cancel(reason) => CaseCommand::Cancel { reason: (*reason).to_owned() },
        };
        let name = command.name();
        run_command(state, principal(*who)?, &id, command).await.with_context(|| format!("{name} as {who:?}"))?;
    }
    Ok(case.id)
}

/// Proposes a contact change's new phone and confirms it with the code, as the customer would
/// have read it back.
async fn new_phone(
    state: &AppState,
    tenant: TenantId,
    principal: &Principal,
    case_id: &CaseId,
    phone: &str,
) -> anyhow::Result<()> {
    use regain_server::recovery::contact;
    let case = state.store.case(tenant, *case_id).await?.context("the case is gone")?;
    let tenant_record = state.store.tenant(tenant).await?.context("no such tenant")?;
    let proposed = contact::parse(&tenant_record, None, Some(phone), true)?;
    let code = regain_server::verification::random_code(state.entropy.as_ref(), 6);
    contact::propose_with_code(state, principal.actor, &case, proposed, code.clone()).await?;
    let case = state.store.case(tenant, *case_id).await?.context("the case is gone")?;
    let ctx = AttemptContext { actor: principal.actor, ip: None, at: state.now() };
    contact::confirm(state, ctx, &case, &code).await?;
    Ok(())
}

/// Records a proof as the demo's history has it: a passed attempt on the case, with its
/// timeline and audit entries, to the customer's first verified contact point of that kind.
async fn record_proof(
    state: &AppState,
    tenant: TenantId,
    principal: &Principal,
    case_id: &CaseId,
    method: &str,
) -> anyhow::Result<()> {
    let method = Method::parse("method", method)?;
    let case = state.store.case(tenant, *case_id).await?.context("the case is gone")?;
    let customer_id = case.customer_id.context("the case has no customer yet")?;
    let customer = state.store.customer(tenant, customer_id).await?.context("no such customer")?;
    let contact = match method {
        Method::Email => customer.emails.iter().find(|e| e.verified).map(|e| (e.address.masked(), e.added_at)),
        Method::Sms => customer.phones.iter().find(|p| p.verified).map(|p| (p.number.masked(), p.added_at)),
        _ => None,
    };
    let attempt = NewAttempt {
        method: method.as_str().to_owned(),
        passed: true,
        counted: false,
        detail: None,
        destination: contact.as_ref().map(|c| c.0.clone()),
        destination_since: contact.as_ref().map(|c| c.1),
    };
    let event =
        CaseEvent::VerificationChecked { method, passed: true, detail: None, destination: attempt.destination.clone() };
    let ctx = AttemptContext { actor: principal.actor, ip: None, at: state.now() };
    let (policy, _) = regain_server::verification::tenant_policy(state, tenant).await?;
    let limit = regain_server::verification::failure_limit(&policy);
    state.store.record_attempt(&case, Some(customer_id), &attempt, &ctx, &[event], &[], &limit, None).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeline_case_is_a_resolved_one_with_history() {
        let script = &SCRIPTS[TIMELINE_CASE];
        assert_eq!(script.kind, "mfa_recovery");
        assert!(script.steps.len() >= 6);
    }
}
