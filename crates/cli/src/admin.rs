//! Administration from the command line: migrations, tenants, staff, API keys, the effective
//! configuration, and TOTP codes. Records are made by the same functions the API uses, so the
//! rules are the same whichever door they come through.
//!
//! A command's result goes to stdout (an id, a secret) so scripts can capture it; notes for
//! the person go to stderr.

use std::io::{BufRead as _, IsTerminal as _};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use regain_core::staff::NewStaff;
use regain_core::totp::{decode_secret, TotpParams};
use regain_core::{Actor, Tenant};
use regain_server::routes::api_keys::create_api_key_record;
use regain_server::routes::customers::erase_customer_record;
use regain_server::routes::staff::{create_staff_record, enrollment};
use regain_server::routes::tenants::{create_tenant_record, CreateTenant, SettingsPatch};
use regain_server::AppState;

use crate::cli::{ApiKeyCommand, EraseArgs, MigrateArgs, StaffCommand, StaffCreateArgs, TenantCommand, TotpArgs};
use crate::config::Config;
use crate::context::{Context, Schema};
use crate::database::Backend;

pub fn show_config(config: &Config) -> anyhow::Result<String> {
    Ok(format!(
        "# The effective configuration: defaults, then the file, then REGAIN__ variables.\n\
         # Secrets are shown as \"{}\".\n\n{}",
        crate::config::REDACTED,
        config.to_redacted_toml()?
    ))
}

pub async fn migrate(config: &Config, args: &MigrateArgs) -> anyhow::Result<ExitCode> {
    let backend = Backend::open(&config.database).await?;
    let shown = config.database_display();
    if !args.status {
        let newly = backend.migrate().await?;
        println!("{shown}: applied {newly} migration(s)");
    }
    let status = backend.migration_status().await?;
    println!("{shown}: {} applied, {} pending", status.applied, status.pending);
    backend.close().await;
    Ok(ExitCode::SUCCESS)
}

pub async fn tenant(config: &Config, command: TenantCommand) -> anyhow::Result<ExitCode> {
    let TenantCommand::Create(args) = command;
    let ctx = Context::open(config, Schema::RequireCurrent).await?;
    let request = CreateTenant {
        slug: args.slug,
        display_name: args.name,
        settings: Some(SettingsPatch { default_region: Some(args.region), ..SettingsPatch::default() }),
    };
    let tenant = create_tenant_record(&ctx.state, request, Actor::System).await.context("creating the tenant")?;
    eprintln!("Tenant {} ({}) created; its id:", tenant.slug, tenant.display_name);
    println!("{}", tenant.id);
    ctx.backend.close().await;
    Ok(ExitCode::SUCCESS)
}

pub async fn staff(config: &Config, command: StaffCommand) -> anyhow::Result<ExitCode> {
    let StaffCommand::Create(args) = command;
    // Read the password before touching the database, so a prompt is not left waiting on a
    // connection and a bad password costs nothing.
    let password = read_password(&args)?;
    let ctx = Context::open(config, Schema::RequireCurrent).await?;
    let (tenant_id, tenant_name) = match &args.tenant {
        Some(slug) => {
            let tenant = tenant_by_slug(&ctx.state, slug).await?;
            (Some(tenant.id), tenant.display_name)
        }
        None => (None, "deployment".to_owned()),
    };
    let new = NewStaff::parse(tenant_id, &args.email, &args.name, &args.role).context("checking the staff account")?;
    let (staff, secret) =
        create_staff_record(&ctx.state, new, &password, Actor::System).await.context("creating the staff account")?;
    let totp = enrollment(&staff, &tenant_name, &secret);
    println!(
        "Staff account created: {} ({}, {}, {})",
        staff.id,
        staff.email,
        staff.role,
        args.tenant.as_deref().unwrap_or("deployment")
    );
    println!();
    println!("TOTP enrolment (shown once; Regain cannot show it again):");
    println!("  secret       {}", totp.secret);
    println!("  otpauth URI  {}", totp.otpauth_uri);
    ctx.backend.close().await;
    Ok(ExitCode::SUCCESS)
}

/// The password from stdin's first line (`--password-stdin`), else typed twice at a prompt
/// that does not echo.
fn read_password(args: &StaffCreateArgs) -> anyhow::Result<String> {
    if args.password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("reading the password from stdin")?;
        let password = line.trim_end_matches(['\n', '\r']).to_owned();
        if password.is_empty() {
            bail!("--password-stdin: stdin held no password");
        }
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        bail!("no terminal to prompt for the password; pass it on stdin with --password-stdin");
    }
    let first = rpassword::prompt_password("Password (12 to 128 characters): ").context("reading the password")?;
    let second = rpassword::prompt_password("Password again: ").context("reading the password")?;
    if first != second {
        bail!("the two passwords differ");
    }
    Ok(first)
}

pub async fn api_key(config: &Config, command: ApiKeyCommand) -> anyhow::Result<ExitCode> {
    let ApiKeyCommand::Create(args) = command;
    let ctx = Context::open(config, Schema::RequireCurrent).await?;
    let tenant = tenant_by_slug(&ctx.state, &args.tenant).await?;
    let (record, secret) =
        create_api_key_record(&ctx.state, tenant.id, &args.name, Some(args.role.as_str()), Actor::System)
            .await
            .context("creating the API key")?;
    eprintln!(
        "API key {} ({:?}, role {}) created for {}. Its secret, shown once \
         (send it as `Authorization: Bearer <secret>`):",
        record.id, record.name, record.role, tenant.slug
    );
    println!("{secret}");
    ctx.backend.close().await;
    Ok(ExitCode::SUCCESS)
}

pub async fn erase_customer(config: &Config, args: &EraseArgs) -> anyhow::Result<ExitCode> {
    if !args.yes {
        bail!("erasing a customer cannot be undone: add --yes to confirm");
    }
    let id = regain_core::CustomerId::parse("id", args.id.trim())
        .map_err(|_| anyhow::anyhow!("{:?} is not a customer id (a UUID)", args.id))?;
    let ctx = Context::open(config, Schema::RequireCurrent).await?;
    ctx.require_personal_data()?;
    let tenant = tenant_by_slug(&ctx.state, &args.tenant).await?;
    let result = erase_customer_record(&ctx.state, tenant.id, id, Actor::System).await;
    ctx.backend.close().await;
    let erased = result.with_context(|| format!("erasing customer {id} of {}", tenant.slug))?;
    eprintln!(
        "Customer {id} erased from {}: the record is deleted and its keys destroyed; the free text of {} case(s) \
         can no longer be read. The audit log keeps its entries and still verifies.",
        tenant.slug, erased.cases_erased
    );
    Ok(ExitCode::SUCCESS)
}

pub fn totp_now(args: &TotpArgs) -> anyhow::Result<String> {
    let secret = decode_secret(&args.secret)
        .filter(|s| !s.is_empty())
        .context("the secret is not base32 (A-Z and 2-7, as printed when the account was made)")?;
    Ok(regain_core::totp::totp(&secret, chrono::Utc::now(), &TotpParams::default()))
}

pub fn totp(args: &TotpArgs) -> anyhow::Result<()> {
    println!("{}", totp_now(args)?);
    Ok(())
}

pub async fn tenant_by_slug(state: &AppState, slug: &str) -> anyhow::Result<Tenant> {
    state
        .store
        .tenant_by_slug(slug)
        .await
        .context("looking up the tenant")?
        .with_context(|| format!("no tenant has the slug {slug:?}"))
}
