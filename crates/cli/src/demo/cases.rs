//! The demo's cases: scripts that open a case and move it through the real state machine
//! (`open_case` and `run_command`, as the API does), acting as the seeded staff, so each state
//! a desk sees is there to look at, with notes, escalations, approvals and a repudiation.

use std::collections::HashMap;

use anyhow::Context as _;
use regain_core::case::{CaseCommand, Channel, NewCase, Tier};
use regain_core::{CaseId, CustomerId, TenantId};
use regain_server::auth::Principal;
use regain_server::routes::cases::open_case;
use regain_server::routes::commands::run_command;
use regain_server::AppState;

use crate::demo::roster::Who;

/// One step of a script, with the staff and customers named by their place in the roster.
enum Step {
    Assign(Who),
    Start,
    Identify(usize),
    Note(&'static str),
    Escalate(i64, &'static str),
    MoveTo(&'static str),
    Decide(bool, &'static str),
    RequestApproval(&'static str),
    Approve(&'static str),
    Deny(&'static str),
    Execute,
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
            (Agent1, Decide(true, "Verified with a recovery code and recent transactions")),
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
            (Agent2, Decide(true, "Old and new numbers both confirmed by code")),
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
            (Analyst, Decide(true, "Login history shows credential stuffing")),
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
            (Agent1, Decide(true, "Verified by code to the registered email")),
            (Agent1, Execute),
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
            (Supervisor1, Decide(true, "Verified by callback and recovery code")),
            (Supervisor1, RequestApproval("Second factor removal")),
            (Supervisor2, Approve("Checked the callback recording")),
            (Supervisor1, Complete(None)),
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
            (Agent2, Decide(true, "Verified by code to the phone on file")),
            (Agent2, Execute),
            (Agent2, Complete(None)),
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
            (Agent2, Identify(31)),
            (Agent2, Decide(true, "Identifiers match")),
            (Agent2, RequestApproval("Contact change")),
            (Supervisor1, Deny("The account is frozen by security; no contact changes")),
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
            (Agent2, Decide(true, "Verified by code to the registered phone")),
            (Agent2, Execute),
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
    customers: &[CustomerId],
) -> anyhow::Result<Vec<CaseId>> {
    let mut ids = Vec::with_capacity(SCRIPTS.len());
    for (n, script) in SCRIPTS.iter().enumerate() {
        let id = run_script(state, tenant, principals, customers, script)
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
    customers: &[CustomerId],
    script: &Script,
) -> anyhow::Result<CaseId> {
    let principal = |who: Who| principals.get(&who).with_context(|| format!("no demo principal for {who:?}"));
    let new = NewCase::parse(script.kind, script.channel, Some(script.summary))?;
    let case = open_case(state, tenant, new, principal(script.opened_by)?.actor).await?;
    let id = case.id.to_string();
    for (who, step) in script.steps {
        let command = match step {
            Assign(to) => CaseCommand::Assign { assignee: principal(*to)?.staff_id },
            Start => CaseCommand::StartIdentification,
            Identify(i) => CaseCommand::Identify {
                customer_id: *customers.get(*i).with_context(|| format!("no demo customer {i}"))?,
            },
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
