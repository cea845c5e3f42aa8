//! Recovery actions: what Regain does to the customer's account once a case is approved for it
//! (issue 6). A case entering `executing` queues its kind's action; a worker performs it through
//! the tenant's connector, exactly once from the customer's point of view, and the case's
//! timeline records each step ([`ActionOutcome`]).

use crate::case::CaseKind;

string_enum!(
    /// What is done to the account.
    ActionKind {
        /// A single-use link to a Regain page where the customer sets a new password.
        PasswordReset = "password_reset",
        /// The username, sent to a registered contact.
        UsernameReminder = "username_reminder",
        /// The directory's lockout cleared.
        Unlock = "unlock",
        MfaReset = "mfa_reset",
        ContactChange = "contact_change",
        Lockdown = "lockdown",
        /// The account deactivated again in the tenant's account system (SECURITY.md L0): owed
        /// when an unlock crossed a lockdown there and the first attempt to deactivate it
        /// again failed. Queued by Regain itself, never the action of a case kind.
        Deactivate = "deactivate",
    }
);

string_enum!(
    /// One step of an action, as the timeline shows it.
    ActionOutcome {
        /// Waiting for the worker.
        Queued = "queued",
        /// The reset link went to a registered contact; the customer's part follows.
        LinkSent = "link_sent",
        /// Done.
        Performed = "performed",
        /// The connector refused it for good, or gave up after its retries.
        Failed = "failed",
        /// A contact change: the code that proves the new contact went to it.
        CodeSent = "code_sent",
        /// A contact change: the code came back right; the new contact is proven.
        Confirmed = "confirmed",
        /// A contact change: the cooling-off ended and the new contact took effect.
        Applied = "applied",
        /// A lockdown: a recent change the security analyst selected was undone.
        RolledBack = "rolled_back",
    }
);

impl ActionKind {
    /// The action a case of `kind` ends in.
    pub fn for_case(kind: CaseKind) -> Self {
        match kind {
            CaseKind::PasswordReset => Self::PasswordReset,
            CaseKind::UsernameRecovery => Self::UsernameReminder,
            CaseKind::AccountUnlock => Self::Unlock,
            CaseKind::MfaRecovery => Self::MfaReset,
            CaseKind::ContactChange => Self::ContactChange,
            CaseKind::CompromisedAccount => Self::Lockdown,
        }
    }

    /// Whether Regain performs this action itself. The others are done by staff in the
    /// tenant's own systems, who then record `complete` on the case.
    pub fn is_automated(self) -> bool {
        // Every kind is, now that contact changes are (issue 6); the staff path stays for
        // cases without an identified customer, which queue nothing.
        matches!(
            self,
            Self::PasswordReset
                | Self::UsernameReminder
                | Self::Unlock
                | Self::MfaReset
                | Self::ContactChange
                | Self::Lockdown
                | Self::Deactivate
        )
    }

    /// What happened, in words for the customer's notice ("Your password was changed").
    pub fn notice(self) -> &'static str {
        match self {
            Self::PasswordReset => "Your password was changed",
            Self::UsernameReminder => "Your username was sent to you",
            Self::Unlock => "Your account was unlocked",
            Self::MfaReset => "Your two-step sign-in was reset",
            Self::ContactChange => "A change of your contact details was requested",
            Self::Lockdown | Self::Deactivate => "Your account was locked down",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_kind_has_its_own_action() {
        let actions: std::collections::HashSet<_> = CaseKind::ALL.iter().map(|k| ActionKind::for_case(*k)).collect();
        assert_eq!(actions.len(), CaseKind::ALL.len());
    }
}
