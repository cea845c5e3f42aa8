//! The demo's banner on stdout: where to look, the key, who can sign in, and commands that
//! work as printed (the real bound address, the real key, a real case id). It is flushed at
//! once, since a test or a script may be reading it through a pipe.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;

use crate::demo::roster;
use crate::demo::Demo;

pub struct Banner<'a> {
    pub addr: SocketAddr,
    pub database: String,
    /// The file the demo's outgoing messages (codes, links) are written to, when it uses one.
    pub messages: Option<String>,
    /// The risk engine's lists folder, when there is one.
    pub risk_lists: Option<String>,
    pub api_key: &'a str,
    pub demo: &'a Demo,
}

/// The line after which the banner is complete.
pub const LAST_LINE: &str = "Requests are logged to stderr. Press Ctrl-C to stop.";

pub fn print(banner: &Banner<'_>) -> anyhow::Result<()> {
    let text = render(banner, &program())?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// How this binary was invoked, quoted for a shell when needed, so the printed `totp`
/// command runs as is (`regain`, or `target/debug/regain` under cargo).
fn program() -> String {
    let argv0 = std::env::args().next().unwrap_or_else(|| "regain".to_owned());
    if argv0.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c)) {
        argv0
    } else {
        format!("'{}'", argv0.replace('\'', r"'\''"))
    }
}

fn render(b: &Banner<'_>, program: &str) -> Result<String, std::fmt::Error> {
    let base = format!("http://{}", b.addr);
    let key = b.api_key;
    let demo = b.demo;
    let mut s = String::new();
    let rule = "=".repeat(72);
    writeln!(s, "{rule}")?;
    writeln!(s, " Regain demo: {} (tenant \"{}\") is ready", demo.tenant.display_name, demo.tenant.slug)?;
    writeln!(s, "{rule}")?;
    writeln!(s)?;
    writeln!(s, "Where to look")?;
    writeln!(s, "  Base URL   {base}")?;
    writeln!(s, "  OpenAPI    {base}/api/v1/openapi.json")?;
    writeln!(s, "  Health     {base}/healthz")?;
    writeln!(s, "  Metrics    {base}/metrics")?;
    let kept = if demo.reused {
        "kept from an earlier run; --fresh starts over"
    } else {
        "seeded just now; kept for the next run"
    };
    writeln!(s, "  Data       {} ({kept})", b.database)?;
    if let Some(messages) = &b.messages {
        writeln!(s, "  Messages   {messages} (codes and links the desk sends customers; one JSON line each)")?;
    }
    if let Some(lists) = &b.risk_lists {
        writeln!(s, "  Risk lists {lists} (IP allow/deny and disposable-email lists; reloaded when they change)")?;
    }
    writeln!(s)?;
    writeln!(s, "API key, role tenant_admin, \"{}\" (a new one each run; shown once)", roster::ADMIN_KEY_NAME)?;
    writeln!(s, "  {key}")?;
    writeln!(s)?;
    writeln!(s, "Staff sign-in: every password is {}", roster::STAFF_PASSWORD)?;
    let email_width = demo.staff.iter().map(|(e, _)| e.email.len()).max().unwrap_or(5);
    writeln!(s, "  {:email_width$}  {:16}  TOTP SECRET", "EMAIL", "ROLE")?;
    for (entry, secret) in &demo.staff {
        writeln!(s, "  {:email_width$}  {:16}  {secret}", entry.email, entry.role)?;
    }
    writeln!(s, "  Current code for a secret:  {program} totp <TOTP SECRET>")?;
    writeln!(s)?;
    writeln!(s, "Customers in the built-in directory ({}; 50 seeded, try these)", demo.tenant.slug)?;
    writeln!(s, "  {:16}  PASSWORD", "USERNAME")?;
    let samples: Vec<(&str, String)> = roster::SAMPLE_CUSTOMERS
        .iter()
        .filter_map(|&i| Some((roster::customer_username(i), roster::customer_password(i)?)))
        .collect();
    for (username, password) in &samples {
        writeln!(s, "  {username:16}  {password}")?;
    }
    writeln!(s)?;
    writeln!(s, "Try it (copy and paste)")?;
    writeln!(s, "  # Open a case")?;
    writeln!(
        s,
        "  curl -s -X POST {base}/api/v1/cases -H 'Authorization: Bearer {key}' \
         -H 'Content-Type: application/json' \
         -d '{{\"kind\":\"password_reset\",\"channel\":\"phone\",\"summary\":\"Locked out after a phone change\"}}'"
    )?;
    writeln!(s, "  # List the open cases")?;
    writeln!(s, "  curl -s '{base}/api/v1/cases?state=open' -H 'Authorization: Bearer {key}'")?;
    if let Some(case_id) = demo.timeline_case {
        writeln!(s, "  # Read a seeded case's timeline")?;
        writeln!(s, "  curl -s {base}/api/v1/cases/{case_id}/timeline -H 'Authorization: Bearer {key}'")?;
    }
    if let Some((username, password)) = samples.first() {
        writeln!(s, "  # Sign a customer in to the built-in directory")?;
        writeln!(
            s,
            "  curl -s -X POST {base}/api/v1/directory/{}/login -H 'Content-Type: application/json' \
             -d '{{\"username\":\"{username}\",\"password\":\"{password}\"}}'",
            demo.tenant.slug
        )?;
    }
    if let Some((entry, secret)) = demo.staff.first() {
        writeln!(s, "  # Sign in as {} ({}): password plus the current TOTP code", entry.name, entry.role)?;
        writeln!(
            s,
            "  curl -s -X POST {base}/api/v1/auth/login -H 'Content-Type: application/json' \
             -d \"{{\\\"email\\\":\\\"{}\\\",\\\"password\\\":\\\"{}\\\",\\\"totp_code\\\":\\\"$({program} totp {secret})\\\"}}\"",
            entry.email,
            roster::STAFF_PASSWORD
        )?;
    }
    writeln!(s)?;
    writeln!(s, "{LAST_LINE}")?;
    Ok(s)
}
