//! The built-in templates: what Regain sends when a tenant has not written its own.
//!
//! The wording says who is writing (the tenant) and why, what to do if it was
//! not the reader who asked, and nothing more. SMS bodies are one short line
//! with the code first, so it shows in a phone's notification preview; an SMS
//! template's subject is empty, as SMS has none.

use crate::{Channel, Template};

/// The names of the built-in templates.
pub const BUILTIN_NAMES: &[&str] = &[
    "verification_code",
    "verification_link",
    "recovery_code_used",
    "recovery_blocked",
    "factor_added",
    "password_reset_link",
    "username_reminder",
    "account_recovered",
    "mfa_reenroll",
];

/// The placeholders a template called `name` may use, for a built-in name:
/// what a tenant's own template of that name is parsed against.
///
/// - `verification_code`: `tenant`, `code`, `minutes` (validity), `purpose`
/// - `verification_link`: `tenant`, `link`, `minutes` (validity), `purpose`
/// - `recovery_code_used`: `tenant`, `when`, `remaining` (codes left)
/// - `recovery_blocked`: `tenant`, `until`
/// - `factor_added`: `tenant`, `factor` (what was set up, e.g. "An authenticator app"), `when`,
///   `report_link` ("this wasn't me")
/// - `password_reset_link`: `tenant`, `link`, `minutes` (validity)
/// - `username_reminder`: `tenant`, `username`
/// - `account_recovered`: `tenant`, `what` (e.g. "Your password was changed"), `when`,
///   `channel` (how the request reached support), `report_link` ("this wasn't me")
/// - `mfa_reenroll`: `tenant`, `link`, `hours` (validity)
///
/// `purpose` is a short noun phrase that completes "for …", such as
/// "account recovery" or "confirming your new phone number".
pub fn builtin_placeholders(name: &str) -> Option<&'static [&'static str]> {
    match name {
        "verification_code" => Some(&["tenant", "code", "minutes", "purpose"]),
        "verification_link" => Some(&["tenant", "link", "minutes", "purpose"]),
        "recovery_code_used" => Some(&["tenant", "when", "remaining"]),
        "recovery_blocked" => Some(&["tenant", "until"]),
        "factor_added" => Some(&["tenant", "factor", "when", "report_link"]),
        "password_reset_link" => Some(&["tenant", "link", "minutes"]),
        "username_reminder" => Some(&["tenant", "username"]),
        "account_recovered" => Some(&["tenant", "what", "when", "channel", "report_link"]),
        "mfa_reenroll" => Some(&["tenant", "link", "hours"]),
        _ => None,
    }
}

/// The built-in template `name` for `channel`, or `None` for an unknown name.
pub fn builtin(name: &str, channel: Channel) -> Option<Template> {
    let allowed = builtin_placeholders(name)?;
    let (subject, body) = text(name, channel)?;
    // The texts below are fixed and tested to parse; `ok()` keeps this free of panics.
    Template::parse(name, subject, body, allowed).ok()
}

fn text(name: &str, channel: Channel) -> Option<(&'static str, &'static str)> {
    let text = match (name, channel) {
        ("verification_code", Channel::Email) => (
            "Your {{tenant}} verification code",
            "Hello,

Your {{tenant}} verification code is:

    {{code}}

{{tenant}} support sent you this code for {{purpose}}. Use it only where you asked for it: \
on the {{tenant}} page you started from, or with the {{tenant}} support agent you contacted. \
It expires in {{minutes}} minutes.

If you did not ask {{tenant}} for this, do not share the code with anyone. \
Nothing has changed on your account, and you can ignore this message.
",
        ),
        ("verification_code", Channel::Sms) => (
            "",
            "{{code}} is your {{tenant}} verification code for {{purpose}}. \
It expires in {{minutes}} min. Didn't ask? Don't share it.",
        ),
        ("verification_link", Channel::Email) => (
            "Continue with {{tenant}}",
            "Hello,

{{tenant}} support sent you this link for {{purpose}}. Open it to continue:

{{link}}

The link works once and expires in {{minutes}} minutes.

If you did not ask {{tenant}} for this, do not open or forward the link. \
Nothing has changed on your account, and you can ignore this message.
",
        ),
        ("verification_link", Channel::Sms) => (
            "",
            "{{tenant}}: open {{link}} for {{purpose}}. It expires in {{minutes}} min. Didn't ask? Ignore this.",
        ),
        ("recovery_code_used", Channel::Email) => (
            "A {{tenant}} recovery code was used",
            "Hello,

One of your {{tenant}} recovery codes was used on {{when}}. Recovery codes left: {{remaining}}.

If this was you, there is nothing to do. When few codes are left, make new ones in your account settings.

If this was not you, contact {{tenant}} support right away: someone may have your recovery codes.
",
        ),
        ("recovery_code_used", Channel::Sms) => (
            "",
            "{{tenant}}: a recovery code was used on {{when}}; {{remaining}} left. Not you? Contact {{tenant}} support now.",
        ),
        ("recovery_blocked", Channel::Email) => (
            "{{tenant}} account recovery is paused",
            "Hello,

Account recovery for your {{tenant}} account is paused until {{until}} \
because of too many failed verification attempts.

Your account itself has not changed: your password and sign-in work as before. \
After {{until}} you can ask for recovery again.

If you did not try to recover your account, someone else may have. \
You do not need to do anything, but you may want to tell {{tenant}} support.
",
        ),
        ("recovery_blocked", Channel::Sms) => (
            "",
            "{{tenant}}: account recovery is paused until {{until}} after too many failed attempts. \
Your sign-in is unchanged. Not you? Tell {{tenant}} support.",
        ),
        ("factor_added", Channel::Email) => (
            "New sign-in method on your {{tenant}} account",
            "Hello,

{{factor}} was set up on your {{tenant}} account on {{when}}.

If this was you, there is nothing to do. You may want to review the devices signed in to your account.

If this was not you, someone may know your password. Tell us now: we will sign every device out \
of your account and our security team will take over:

{{report_link}}

A new sign-in method cannot be used to recover your account for several days, so whoever set it up \
cannot use it to take your account over in the meantime.
",
        ),
        ("factor_added", Channel::Sms) => (
            "",
            "{{tenant}}: {{factor}} was set up on your account on {{when}}. Not you? {{report_link}}",
        ),
        ("password_reset_link", Channel::Email) => (
            "Set a new password for your {{tenant}} account",
            "Hello,

{{tenant}} support has verified you and started a password reset for your account. \
Open this link to choose your new password:

{{link}}

The link works once and expires in {{minutes}} minutes. Nobody at {{tenant}} will ever ask you \
for your new password, and support cannot see it.

If you did not ask {{tenant}} for this, do not open the link, and contact {{tenant}} support: \
your password has not changed.
",
        ),
        ("password_reset_link", Channel::Sms) => (
            "",
            "{{tenant}}: set your new password at {{link}} (works once, {{minutes}} min). Didn't ask? Don't open it.",
        ),
        ("username_reminder", Channel::Email) => (
            "Your {{tenant}} username",
            "Hello,

You asked {{tenant}} support for your username. It is:

    {{username}}

If you did not ask for this, you can ignore this message: nothing has changed on your account.
",
        ),
        ("username_reminder", Channel::Sms) => ("", "{{tenant}}: your username is {{username}}. Didn't ask? Ignore this."),
        ("account_recovered", Channel::Email) => (
            "{{what}} - {{tenant}} account",
            "Hello,

{{what}} on {{when}}, after a request to {{tenant}} support by {{channel}}.

If this was you, there is nothing more to do. To keep your account safe:
  - turn on two-step sign-in (an authenticator app) if it is not on yet;
  - make sure {{tenant}} has a second email address or phone number for you, for recovery;
  - review the devices signed in to your account.

If this was not you, tell us now. We will stop what we can and our security team will take over:

{{report_link}}
",
        ),
        ("account_recovered", Channel::Sms) => (
            "",
            "{{tenant}}: {{what}} on {{when}} ({{channel}} request). Not you? {{report_link}}",
        ),
        ("mfa_reenroll", Channel::Email) => (
            "Set up two-step sign-in for your {{tenant}} account again",
            "Hello,

{{tenant}} support has verified you and removed the two-step sign-in methods from your account \
(your authenticator app and saved recovery codes). Every device signed in to your account was \
signed out. Set up an authenticator app again here:

{{link}}

The link works once and expires in {{hours}} hours. Until then you sign in with your password alone.

If you did not ask {{tenant}} for this, contact {{tenant}} support right away.
",
        ),
        ("mfa_reenroll", Channel::Sms) => (
            "",
            "{{tenant}}: two-step sign-in was reset. Set it up again at {{link}} ({{hours}} h). Not you? Call {{tenant}} support.",
        ),
        _ => return None,
    };
    Some(text)
}
