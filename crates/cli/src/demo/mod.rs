//! `regain demo`: the first-run experience. Seeds ACME Bank in `<data_dir>/demo.db` (staff in
//! every role, fifty customers, cases in every state), mints a fresh admin API key, serves, and
//! prints a banner whose commands work as printed.
//!
//! A second run keeps the data (use `--fresh` to start over) but still mints a new key, since
//! a key's secret is shown only once.

mod banner;
mod cases;
mod roster;

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use regain_core::case::{CaseKind, CaseState};
use regain_core::staff::NewStaff;
use regain_core::totp::encode_secret;
use regain_core::{Actor, CaseId, EmailAddress, Role, Tenant};
use regain_server::auth::Principal;
use regain_server::routes::api_keys::create_api_key_record;
use regain_server::routes::customers::create_customer_record;
use regain_server::routes::staff::create_staff_record;
use regain_server::routes::tenants::{create_tenant_record, CreateTenant, SettingsPatch};
use regain_server::{AppState, Application};
use regain_store::{CaseFilter, PageRequest, StaffRecord};
use secrecy::SecretString;
use tracing::instrument::WithSubscriber as _;

use crate::cli::DemoArgs;
use crate::config::{Config, DatabaseSection};
use crate::context::{Context, Schema};
use crate::demo::roster::{StaffEntry, Who, STAFF};

/// What the banner shows about the seeded data.
pub struct Demo {
    pub tenant: Tenant,
    /// Each roster entry with its TOTP secret, base32.
    pub staff: Vec<(&'static StaffEntry, String)>,
    pub timeline_case: Option<CaseId>,
    /// Whether the data was already there (a re-run).
    pub reused: bool,
}

pub async fn run(config: &Config, args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let data_dir = args.data_dir.clone().unwrap_or_else(|| config.database.data_dir.clone());
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let db_path = data_dir.join("demo.db");
    if args.fresh {
        remove_database(&db_path)?;
    }
    // An example deny list, so the risk panel has something to say about an address from it.
    let risk_lists = config.risk_lists_dir(&data_dir).unwrap_or_else(|| data_dir.join("risk-lists"));
    if config.risk.lists_dir.is_none() && !risk_lists.exists() {
        std::fs::create_dir_all(&risk_lists)
            .with_context(|| format!("creating the demo's risk lists {}", risk_lists.display()))?;
        std::fs::write(risk_lists.join("example.deny.txt"), EXAMPLE_DENY_LIST)
            .with_context(|| format!("writing the demo's example deny list in {}", risk_lists.display()))?;
    }
    let database = DatabaseSection {
        url: Some(SecretString::from(format!("sqlite://{}", db_path.display()))),
        data_dir: data_dir.clone(),
        connections_max: config.database.connections_max,
        acquire_timeout_ms: config.database.acquire_timeout_ms,
    };
    let mut server = config.server_config();
    if let Some(listen) = args.listen {
        server.listen = listen;
    }
    // Browsers treat localhost as a secure context, so Secure cookies work over plain HTTP.
    server.cookie_secure = true;
    if server.listen.port() != 0 {
        server.public_url = format!("http://{}", server.listen);
    }
    let mut ctx = Context::open_with(&database, config, server, Schema::Migrate).await?;
    // Codes and links go to a file next to the database, so a person trying the demo can read
    // them, unless the configuration names real transports.
    let messages = data_dir.join("demo-messages.jsonl");
    let sink_in_use = config.delivery.email == "none" && config.delivery.sms == "none";
    if sink_in_use {
        let file: std::sync::Arc<dyn regain_delivery::Transport> = std::sync::Arc::new(
            regain_delivery::FileSink::open(&messages)
                .with_context(|| format!("opening the demo's message file {}", messages.display()))?,
        );
        ctx.state.delivery = std::sync::Arc::new(regain_delivery::Router::new(Some(file.clone()), Some(file)));
    }
    let state = &ctx.state;

    // Seeding makes a hundred records; their log lines would bury the banner.
    let demo = prepare(state).with_subscriber(tracing::subscriber::NoSubscriber::default()).await?;
    let (_, api_key) =
        create_api_key_record(state, demo.tenant.id, roster::ADMIN_KEY_NAME, Some("tenant_admin"), Actor::System)
            .await
            .context("minting the demo API key")?;

    let app =
        Application::build(state.clone()).await.with_context(|| format!("listening on {}", state.config.listen))?;
    let addr = app.local_addr().context("reading the bound address")?;
    let messages = sink_in_use.then(|| messages.display().to_string());
    banner::print(&banner::Banner {
        addr,
        database: db_path.display().to_string(),
        messages,
        risk_lists: config.risk_lists_dir(&data_dir).map(|d| d.display().to_string()),
        api_key: &api_key,
        demo: &demo,
    })
    .context("printing the banner")?;
    tracing::info!(listen = %addr, backend = ctx.backend.name(), "regain demo is serving");
    app.run_until(crate::serve::shutdown_signal()).await.context("serving")?;
    ctx.backend.close().await;
    Ok(ExitCode::SUCCESS)
}

/// The demo's example IP deny list: the documentation range, so nothing real is blocked.
const EXAMPLE_DENY_LIST: &str = "# The demo's example deny list: requests from these addresses score as denied.\n\
# One address or CIDR block a line; NAME.allow.txt files list trusted ones, NAME.domains.txt\n\
# disposable-email domains, and a folder named by a tenant's slug holds that tenant's own.\n\
203.0.113.0/24\n";

fn remove_database(db_path: &Path) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", db_path.display());
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {path}")),
        }
    }
    Ok(())
}

/// Seeds the demo, or reads back what an earlier run seeded.
async fn prepare(state: &AppState) -> anyhow::Result<Demo> {
    match state.store.tenant_by_slug(roster::TENANT_SLUG).await? {
        Some(tenant) => load(state, tenant).await,
        None => seed(state).await,
    }
}

async fn load(state: &AppState, tenant: Tenant) -> anyhow::Result<Demo> {
    let mut staff = Vec::with_capacity(STAFF.len());
    for entry in &STAFF {
        let Some(record) = staff_record(state, entry).await? else {
            bail!(
                "the demo database is incomplete (was an earlier seeding interrupted?); \
                 start over with `regain demo --fresh`"
            );
        };
        staff.push((entry, encode_secret(&record.totp_secret)));
    }
    let filter =
        CaseFilter { states: vec![CaseState::Resolved], kind: Some(CaseKind::MfaRecovery), ..CaseFilter::default() };
    let page = PageRequest { limit: 1, after: None };
    let mut timeline_case = state.store.list_cases(tenant.id, &filter, &page).await?.items.first().map(|c| c.id);
    if timeline_case.is_none() {
        let any = state.store.list_cases(tenant.id, &CaseFilter::default(), &page).await?;
        timeline_case = any.items.first().map(|c| c.id);
    }
    Ok(Demo { tenant, staff, timeline_case, reused: true })
}

async fn staff_record(state: &AppState, entry: &StaffEntry) -> anyhow::Result<Option<StaffRecord>> {
    let email = EmailAddress::parse("email", entry.email)?;
    Ok(state.store.staff_by_email(&email.normalized()).await?)
}

async fn seed(state: &AppState) -> anyhow::Result<Demo> {
    let tenant = create_tenant_record(
        state,
        CreateTenant {
            slug: roster::TENANT_SLUG.to_owned(),
            display_name: roster::TENANT_NAME.to_owned(),
            settings: Some(SettingsPatch {
                default_region: Some(roster::TENANT_REGION.to_owned()),
                ..SettingsPatch::default()
            }),
        },
        Actor::System,
    )
    .await
    .context("creating the demo tenant")?;

    let mut principals = HashMap::new();
    let mut staff = Vec::with_capacity(STAFF.len());
    for entry in &STAFF {
        let tenant_id = entry.in_tenant.then_some(tenant.id);
        let new = NewStaff::parse(tenant_id, entry.email, entry.name, entry.role)?;
        let (member, secret) = create_staff_record(state, new, roster::STAFF_PASSWORD, Actor::System)
            .await
            .with_context(|| format!("creating demo staff {}", entry.email))?;
        principals.insert(
            entry.who,
            Principal {
                actor: Actor::Staff { id: member.id, role: member.role },
                role: member.role,
                tenant_id: member.tenant_id,
                staff_id: Some(member.id),
                session_hash: None,
            },
        );
        staff.push((entry, encode_secret(&secret)));
    }
    let (integration, _) =
        create_api_key_record(state, tenant.id, roster::INTEGRATION_KEY_NAME, Some("integration"), Actor::System)
            .await
            .context("creating the demo integration key")?;
    principals.insert(
        Who::Integration,
        Principal {
            actor: Actor::ApiKey { id: integration.id },
            role: Role::Integration,
            tenant_id: Some(tenant.id),
            staff_id: None,
            session_hash: None,
        },
    );

    for input in roster::customers() {
        create_customer_record(state, tenant.id, &tenant.settings.default_region, &input, Actor::System)
            .await
            .with_context(|| format!("creating demo customer {}", input.username))?;
    }

    let case_ids = cases::seed(state, tenant.id, &principals).await?;
    Ok(Demo { tenant, staff, timeline_case: case_ids.get(cases::TIMELINE_CASE).copied(), reused: false })
}
